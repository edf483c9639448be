import type { VoxelGrid } from '../atlas/mni-grid.js';
import { applyAffine } from '../nifti/affine.js';
import { blockAverage, type Voxels } from './downsample.js';
import type { ElastixImage, ElastixMask } from './elastix.js';
import { REGISTRATION_MM, REGISTRATION_WINDOW_HU } from './parameters.js';
import { resampleVolume } from './resample-to-template.js';

export type PreparedImage = {
  /** Windowed, on a 2 mm grid along the world axes; 0 outside the field of view. */
  image: ElastixImage;
  /** 1 inside the field of view (or, with `dilateHeadMm`, on and near the head). */
  mask: ElastixMask;
  /** Windowed values with NaN outside the field of view, for quality checks. */
  sampled: Voxels;
};

/**
 * A volume as elastix is given it: block-averaged to ~2 mm, resampled onto a
 * grid along the world axes (so any storage order, tilt or shear becomes a
 * plain grid), in a world moved by −`shiftMm`, clipped to the registration
 * window. Pure.
 */
export function prepareImage(volume: Voxels, shiftMm: readonly [number, number, number], dilateHeadMm?: number): PreparedImage {
  const reduced = blockAverage(volume, REGISTRATION_MM);
  const [nx, ny, nz] = reduced.dims;
  const corners = [0, nx - 1].flatMap((i) => [0, ny - 1].flatMap((j) => [0, nz - 1].map((k) => applyAffine(reduced.affine, i, j, k))));
  const min = [0, 1, 2].map((a) => Math.min(...corners.map((c) => c[a]!)) - shiftMm[a]!);
  const max = [0, 1, 2].map((a) => Math.max(...corners.map((c) => c[a]!)) - shiftMm[a]!);
  const s = REGISTRATION_MM;
  const grid: VoxelGrid = {
    dims: [0, 1, 2].map((a) => Math.max(1, Math.floor((max[a]! - min[a]!) / s) + 1)) as [number, number, number],
    affine: [s, 0, 0, min[0]!, 0, s, 0, min[1]!, 0, 0, s, min[2]!, 0, 0, 0, 1],
  };
  const unshift = [1, 0, 0, shiftMm[0], 0, 1, 0, shiftMm[1], 0, 0, 1, shiftMm[2], 0, 0, 0, 1];
  const hu = resampleVolume(reduced, grid, unshift, NaN);
  const [lo, hi] = REGISTRATION_WINDOW_HU;
  const values = new Float32Array(hu.length);
  const windowed = new Float32Array(hu.length);
  const mask = new Uint8Array(hu.length);
  for (let n = 0; n < hu.length; n++) {
    const v = hu[n]!;
    if (v !== v) { windowed[n] = NaN; continue; }
    const w = v < lo ? lo : v > hi ? hi : v;
    values[n] = w; windowed[n] = w; mask[n] = 1;
  }
  const headMask = dilateHeadMm === undefined ? mask : dilate(Uint8Array.from(hu, (v) => (v > -500 ? 1 : 0)), grid.dims, Math.round(dilateHeadMm / s));
  return { image: { ...grid, values }, mask: { ...grid, values: headMask }, sampled: { dims: grid.dims, affine: grid.affine, hu: windowed } };
}

/** Binary dilation by a (2r+1)³ box, one axis at a time. */
function dilate(mask: Uint8Array, dims: readonly [number, number, number], r: number): Uint8Array {
  let current = mask;
  const strides = [1, dims[0], dims[0] * dims[1]];
  for (let axis = 0; axis < 3; axis++) {
    const next = new Uint8Array(current.length);
    const stride = strides[axis]!, n = dims[axis]!;
    for (let p = 0; p < current.length; p++) {
      if (!current[p]) continue;
      const at = Math.floor(p / stride) % n;
      for (let d = Math.max(-r, -at); d <= Math.min(r, n - 1 - at); d++) next[p + d * stride] = 1;
    }
    current = next;
  }
  return current;
}
