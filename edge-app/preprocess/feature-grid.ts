/**
 * The grid aspects-region/v3 looks at (MODEL.md "Preprocessing"): 2 mm in MNI
 * space over the ASPECTS levels, symmetric about x = 0 so the mirror of voxel
 * i is voxel NX − 1 − i, and the atlas's labels sampled onto it. Pure.
 */
import type { LabelVolume } from '../atlas/aspects-atlas.js';
import type { VoxelGrid } from '../atlas/mni-grid.js';
import { applyAffine, invertAffine, multiplyAffines } from '../nifti/affine.js';

export const FEATURE_VOXEL_MM = 2;
/** x −90…90, y −104…76, z −22…72 mm (voxel centres), 91 × 91 × 48: both ASPECTS levels with a margin. */
export const FEATURE_GRID: VoxelGrid = Object.freeze({
  dims: Object.freeze([91, 91, 48]) as unknown as readonly [number, number, number],
  affine: Object.freeze([2, 0, 0, -90, 0, 2, 0, -104, 0, 0, 2, -22, 0, 0, 0, 1]),
});

/** Index of voxel (i, j, k) on FEATURE_GRID, x fastest. */
export const gridIndex = (i: number, j: number, k: number): number => (k * FEATURE_GRID.dims[1] + j) * FEATURE_GRID.dims[0] + i;

/** The voxel at −x: (NX − 1 − i, j, k). */
export function mirrorIndex(index: number): number {
  const nx = FEATURE_GRID.dims[0];
  const i = index % nx;
  return index - i + (nx - 1 - i);
}

/**
 * The atlas's labels at the centres of FEATURE_GRID's voxels, nearest
 * neighbour (half-way points round up, Math.round); 0 outside the atlas.
 */
export function labelsOnFeatureGrid(atlas: LabelVolume): Uint8Array {
  const [nx, ny, nz] = FEATURE_GRID.dims;
  const [ax, ay, az] = atlas.dims;
  const m = multiplyAffines(invertAffine(atlas.affine), FEATURE_GRID.affine);
  const out = new Uint8Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const [x, y, z] = applyAffine(m, i, j, k);
        const a = Math.round(x), b = Math.round(y), c = Math.round(z);
        if (a < 0 || b < 0 || c < 0 || a >= ax || b >= ay || c >= az) continue;
        out[gridIndex(i, j, k)] = atlas.labels[(c * ay + b) * ax + a]!;
      }
    }
  }
  return out;
}
