import { assertGrid, DEFAULT_GRID, type Grid } from './grid.js';
import { resampleToGrid, type VolumeGeometry } from './resample.js';

export type Hemisphere = 'L' | 'R';

/**
 * Gain of the difference channel (MODEL.md step 6). A power of two, so
 * `DIFFERENCE_GAIN · (s − c)` rounds to float32 exactly as float32 `s − c`
 * scaled afterwards does (the PyTorch engine computes it that way).
 */
export const DIFFERENCE_GAIN = 4;

/**
 * MODEL.md step 6: [D][H][W] → [D, H, W/2, 2] channels-last. The right half is
 * mirrored so both halves end at the midline. Channel 0 is the left/right
 * comparison `DIFFERENCE_GAIN · (symptomatic − contralateral)`, channel 1 the
 * symptomatic half itself.
 */
export function pairHemispheres(values: Float32Array, hemisphere: Hemisphere, grid: Grid = DEFAULT_GRID): Float32Array {
  assertGrid(grid);
  const { depth: D, height: H, width: W } = grid;
  if (values.length !== D * H * W) throw new RangeError(`grid has ${values.length} cells, ${D}×${H}×${W} expected`);
  const half = W / 2;
  const out = new Float32Array(D * H * half * 2);
  const left = hemisphere === 'L';
  for (let row = 0; row < D * H; row++) {
    const src = row * W;
    for (let w = 0; w < half; w++) {
      const dst = (row * half + w) * 2;
      const l = values[src + w]!, r = values[src + W - 1 - w]!;
      const symptomatic = left ? l : r, contralateral = left ? r : l;
      out[dst] = DIFFERENCE_GAIN * Math.fround(symptomatic - contralateral);
      out[dst + 1] = symptomatic;
    }
  }
  return out;
}

/** The full MODEL.md preprocessing: the model input for one volume. */
export function preprocess(volume: VolumeGeometry, hemisphere: Hemisphere, grid: Grid = DEFAULT_GRID): Float32Array {
  return pairHemispheres(resampleToGrid(volume, grid), hemisphere, grid);
}
