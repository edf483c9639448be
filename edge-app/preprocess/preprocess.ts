import { assertGrid, DEFAULT_GRID, type Grid } from './grid.js';
import { resampleToGrid, type VolumeGeometry } from './resample.js';

export type Hemisphere = 'L' | 'R';

/**
 * MODEL.md step 6: [D][H][W] → [D, H, W/2, 2] channels-last. The right half is
 * mirrored so both halves end at the midline; channel 0 is the symptomatic half.
 */
export function pairHemispheres(values: Float32Array, hemisphere: Hemisphere, grid: Grid = DEFAULT_GRID): Float32Array {
  assertGrid(grid);
  const { depth: D, height: H, width: W } = grid;
  if (values.length !== D * H * W) throw new RangeError(`grid has ${values.length} cells, ${D}×${H}×${W} expected`);
  const half = W / 2;
  const out = new Float32Array(D * H * half * 2);
  const leftChannel = hemisphere === 'L' ? 0 : 1;
  for (let row = 0; row < D * H; row++) {
    const src = row * W;
    for (let w = 0; w < half; w++) {
      const dst = (row * half + w) * 2;
      out[dst + leftChannel] = values[src + w]!;
      out[dst + 1 - leftChannel] = values[src + W - 1 - w]!;
    }
  }
  return out;
}

/** The full MODEL.md preprocessing: the model input for one volume. */
export function preprocess(volume: VolumeGeometry, hemisphere: Hemisphere, grid: Grid = DEFAULT_GRID): Float32Array {
  return pairHemispheres(resampleToGrid(volume, grid), hemisphere, grid);
}
