import type { VoxelGrid } from '../atlas/mni-grid.js';
import { invertAffine, multiplyAffines } from '../nifti/affine.js';
import type { Voxels } from './downsample.js';

/**
 * Trilinear samples of `source` at the voxel centres of `grid`, where
 * `gridToSource` maps the grid's world (RAS+ mm) into the source's world.
 * Points outside the source's voxel centres get `fill`. Pure.
 */
export function resampleVolume(source: Voxels, grid: VoxelGrid, gridToSource: readonly number[], fill: number): Float32Array {
  const [nx, ny, nz] = source.dims;
  const [gx, gy, gz] = grid.dims;
  // grid voxel → source voxel, one matrix.
  const m = multiplyAffines(invertAffine(source.affine), multiplyAffines(gridToSource, grid.affine));
  const out = new Float32Array(gx * gy * gz);
  const hu = source.hu;
  const sxy = nx * ny;
  for (let k = 0; k < gz; k++) {
    for (let j = 0; j < gy; j++) {
      const bx = m[1]! * j + m[2]! * k + m[3]!, by = m[5]! * j + m[6]! * k + m[7]!, bz = m[9]! * j + m[10]! * k + m[11]!;
      const row = (k * gy + j) * gx;
      for (let i = 0; i < gx; i++) {
        const x = bx + m[0]! * i, y = by + m[4]! * i, z = bz + m[8]! * i;
        // A single slice or row is still sampled on its plane (nearest along the flat axis).
        const x0 = nx === 1 ? 0 : Math.floor(x), y0 = ny === 1 ? 0 : Math.floor(y), z0 = nz === 1 ? 0 : Math.floor(z);
        if (!(x > -0.5 && y > -0.5 && z > -0.5 && x < nx - 0.5 && y < ny - 0.5 && z < nz - 0.5)) { out[row + i] = fill; continue; }
        const xa = Math.max(0, Math.min(nx - 2, x0)), ya = Math.max(0, Math.min(ny - 2, y0)), za = Math.max(0, Math.min(nz - 2, z0));
        // Clamped weights: the half voxel beyond the outer centres repeats the edge value.
        const fx = nx === 1 ? 0 : Math.max(0, Math.min(1, x - xa)), fy = ny === 1 ? 0 : Math.max(0, Math.min(1, y - ya)), fz = nz === 1 ? 0 : Math.max(0, Math.min(1, z - za));
        const dx = nx === 1 ? 0 : 1, dy = ny === 1 ? 0 : nx, dz = nz === 1 ? 0 : sxy;
        const p = za * sxy + ya * nx + xa;
        const c00 = hu[p]! + fx * (hu[p + dx]! - hu[p]!);
        const c10 = hu[p + dy]! + fx * (hu[p + dy + dx]! - hu[p + dy]!);
        const c01 = hu[p + dz]! + fx * (hu[p + dz + dx]! - hu[p + dz]!);
        const c11 = hu[p + dz + dy]! + fx * (hu[p + dz + dy + dx]! - hu[p + dz + dy]!);
        const c0 = c00 + fy * (c10 - c00), c1 = c01 + fy * (c11 - c01);
        out[row + i] = c0 + fz * (c1 - c0);
      }
    }
  }
  return out;
}

/**
 * A scan resampled into template space: `toTemplate` (from registerVolume)
 * maps scan world → template world; voxels the scan does not cover are NaN.
 * Resample a 0.45 mm scan through `blockAverage` first to avoid aliasing. Pure.
 */
export function resampleToTemplate(scan: Voxels, toTemplate: readonly number[], grid: VoxelGrid): Float32Array {
  return resampleVolume(scan, grid, invertAffine(toTemplate), NaN);
}
