/**
 * Example slices of the experiment's test scans as PNG images with the ASPECTS regions of the
 * symptomatic side drawn over them: the outline says what the label is (orange: affected, cyan:
 * not), a red fill says the model calls the region affected. Pure: pixels in, PNG bytes out.
 */
import { renderPng } from './png.js';

export type SliceInput = { readonly width: number; readonly height: number; readonly image: Uint8Array; readonly regions: Uint8Array };

/** Upscaling of the 2 mm grid for display. */
export const SLICE_SCALE = 3;
const AFFECTED_OUTLINE = [255, 150, 0] as const;
const UNAFFECTED_OUTLINE = [0, 200, 230] as const;
const CALLED_FILL = [230, 30, 30] as const;
const FILL_ALPHA = 0.4;

/**
 * `truth[r]` and `called[r]` for region index r (label value r + 1): the true label and the
 * model's decision. Returns the PNG and each region's centre (fractions of width and height) for its name.
 */
export function renderSlicePng(s: SliceInput, truth: readonly boolean[], called: readonly boolean[]): { png: Buffer; centres: Map<number, readonly [number, number]> } {
  const scale = SLICE_SCALE;
  const w = s.width * scale, h = s.height * scale;
  const rgb = new Uint8Array(w * h * 3);
  const labelAt = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : s.regions[Math.floor(y / scale) * s.width + Math.floor(x / scale)]!);
  // Bilinear grey between voxel centres, so the upscaled scan does not look like tiles.
  const grey = (x: number, y: number) => {
    const fx = Math.min(s.width - 1, Math.max(0, (x + 0.5) / scale - 0.5)), fy = Math.min(s.height - 1, Math.max(0, (y + 0.5) / scale - 0.5));
    const x0 = Math.floor(fx), y0 = Math.floor(fy), x1 = Math.min(s.width - 1, x0 + 1), y1 = Math.min(s.height - 1, y0 + 1);
    const ax = fx - x0, ay = fy - y0;
    const at = (i: number, j: number) => s.image[j * s.width + i]!;
    return (at(x0, y0) * (1 - ax) + at(x1, y0) * ax) * (1 - ay) + (at(x0, y1) * (1 - ax) + at(x1, y1) * ax) * ay;
  };
  const sums = new Map<number, [number, number, number]>();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const g = grey(x, y);
      let rgbHere: [number, number, number] = [g, g, g];
      const label = labelAt(x, y);
      if (label > 0) {
        const r = label - 1;
        const sum = sums.get(label) ?? [0, 0, 0];
        sums.set(label, [sum[0] + x, sum[1] + y, sum[2] + 1]);
        if (called[r]) rgbHere = rgbHere.map((c, i) => c * (1 - FILL_ALPHA) + CALLED_FILL[i]! * FILL_ALPHA) as [number, number, number];
        const edge = labelAt(x - 1, y) !== label || labelAt(x + 1, y) !== label || labelAt(x, y - 1) !== label || labelAt(x, y + 1) !== label;
        if (edge) rgbHere = [...(truth[r] ? AFFECTED_OUTLINE : UNAFFECTED_OUTLINE)];
      }
      rgb.set(rgbHere.map((c) => Math.round(c)), (y * w + x) * 3);
    }
  }
  const centres = new Map([...sums].map(([label, [sx, sy, n]]) => [label, [sx / n / w, sy / n / h] as const]));
  return { png: renderPng(w, h, rgb), centres };
}
