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
export function prepareImage(volume: Voxels, shiftMm: readonly [number, number, number], dilateHeadMm?: number, reduced = blockAverage(volume, REGISTRATION_MM)): PreparedImage {
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
  // Only the head and a margin go to elastix: its pyramid smooths every voxel it is given, and the
  // cropped voxels are 0 (air or outside the field of view), which the smoothing repeats at the border.
  const box = boundingBox(dilateHeadMm === undefined ? values : headMask, grid.dims, CROP_MARGIN_VOXELS);
  if (!box) return { image: { ...grid, values }, mask: { ...grid, values: headMask }, sampled: { ...grid, hu: windowed } };
  const cropped = cropGrid(grid, box);
  return {
    image: { ...cropped, values: crop(values, grid.dims, box) },
    mask: { ...cropped, values: crop(headMask, grid.dims, box) },
    sampled: { ...cropped, hu: crop(windowed, grid.dims, box) },
  };
}

/** Beyond the head, more than the coarsest level's smoothing reaches (σ = 2 voxels, kernel ≈ 4σ). */
const CROP_MARGIN_VOXELS = 10;

type Box = { lo: [number, number, number]; hi: [number, number, number] };

/** Inclusive bounds of the non-zero voxels, widened by `margin` and clipped to the grid; undefined if all are 0. */
function boundingBox(values: Float32Array | Uint8Array, dims: readonly [number, number, number], margin: number): Box | undefined {
  const [nx, ny, nz] = dims;
  const lo: [number, number, number] = [nx, ny, nz], hi: [number, number, number] = [-1, -1, -1];
  for (let k = 0, n = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++, n++) {
        if (!(values[n]! > 0)) continue;
        if (i < lo[0]) lo[0] = i;
        if (i > hi[0]) hi[0] = i;
        if (j < lo[1]) lo[1] = j;
        if (j > hi[1]) hi[1] = j;
        if (k < lo[2]) lo[2] = k;
        if (k > hi[2]) hi[2] = k;
      }
    }
  }
  if (hi[0] < 0) return undefined;
  return {
    lo: lo.map((v) => Math.max(0, v - margin)) as [number, number, number],
    hi: hi.map((v, a) => Math.min(dims[a]! - 1, v + margin)) as [number, number, number],
  };
}

/** The grid of the voxels inside `box`: same spacing, origin moved to its first voxel. */
function cropGrid(grid: VoxelGrid, box: Box): VoxelGrid {
  const a = grid.affine;
  const [x, y, z] = applyAffine(a, ...box.lo);
  return {
    dims: box.hi.map((h, i) => h - box.lo[i]! + 1) as [number, number, number],
    affine: [a[0]!, a[1]!, a[2]!, x, a[4]!, a[5]!, a[6]!, y, a[8]!, a[9]!, a[10]!, z, 0, 0, 0, 1],
  };
}

function crop<T extends Float32Array | Uint8Array>(values: T, dims: readonly [number, number, number], box: Box): T {
  const [nx, ny] = dims;
  const width = box.hi[0] - box.lo[0] + 1;
  const out = new (values.constructor as new (n: number) => T)(width * (box.hi[1] - box.lo[1] + 1) * (box.hi[2] - box.lo[2] + 1));
  let at = 0;
  for (let k = box.lo[2]; k <= box.hi[2]; k++) {
    for (let j = box.lo[1]; j <= box.hi[1]; j++, at += width) {
      const row = (k * ny + j) * nx;
      out.set(values.subarray(row + box.lo[0], row + box.lo[0] + width), at);
    }
  }
  return out;
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
