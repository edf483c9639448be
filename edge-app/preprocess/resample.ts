import type { NiftiVolume } from '../nifti/volume.js';
import { assertGrid, DEFAULT_GRID, GRID_BOX, HU_WINDOW, normaliseHu, type Grid } from './grid.js';

export type VolumeGeometry = Pick<NiftiVolume, 'dims' | 'hu' | 'affine'>;

/**
 * MODEL.md steps 3–5: clip to the brain window, area-average onto the grid by
 * splatting each voxel centre into the cell it falls in, normalise.
 * Returns [D][H][W] (x fastest); empty cells are 0 HU, i.e. −1.
 */
export function resampleToGrid(volume: VolumeGeometry, grid: Grid = DEFAULT_GRID): Float32Array {
  assertGrid(grid);
  const { depth: D, height: H, width: W } = grid;
  const [nx, ny, nz] = volume.dims;
  const { hu } = volume;
  const sums = new Float64Array(D * H * W);
  const counts = new Uint32Array(D * H * W);
  const [lo, hi] = HU_WINDOW;

  // Voxel → continuous cell coordinates (u along W, v along H, t along D).
  const m = volume.affine;
  const toCell = (row: number, size: number, box: readonly [number, number]) => {
    const s = size / (box[1] - box[0]);
    return [m[row]! * s, m[row + 1]! * s, m[row + 2]! * s, (m[row + 3]! - box[0]) * s] as const;
  };
  const [ux, uy, uz, u0] = toCell(0, W, GRID_BOX.x);
  const [vx, vy, vz, v0] = toCell(4, H, GRID_BOX.y);
  const [tx, ty, tz, t0] = toCell(8, D, GRID_BOX.z);

  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const ur = u0 + uy * j + uz * k, vr = v0 + vy * j + vz * k, tr = t0 + ty * j + tz * k;
      // Only the run of i whose centres can land inside the box (one voxel of slack each side).
      let first = 0, last = nx - 1;
      for (const [start, step, size] of [[ur, ux, W], [vr, vx, H], [tr, tx, D]] as const) {
        if (step === 0) {
          if (start < 0 || start >= size) { first = 1; last = 0; }
          continue;
        }
        const a = (0 - start) / step, b = (size - start) / step;
        first = Math.max(first, Math.floor(Math.min(a, b)) - 1);
        last = Math.min(last, Math.ceil(Math.max(a, b)) + 1);
      }
      const rowStart = (k * ny + j) * nx;
      for (let i = first; i <= last; i++) {
        const u = ur + ux * i, v = vr + vx * i, t = tr + tx * i;
        if (u < 0 || u >= W || v < 0 || v >= H || t < 0 || t >= D) continue;
        let value = hu[rowStart + i]!;
        if (value !== value) continue; // NaN voxels carry no information
        value = value < lo ? lo : value > hi ? hi : value;
        const cell = ((t | 0) * H + (v | 0)) * W + (u | 0);
        sums[cell]! += value;
        counts[cell]!++;
      }
    }
  }

  const out = new Float32Array(D * H * W);
  for (let c = 0; c < out.length; c++) out[c] = normaliseHu(counts[c]! > 0 ? sums[c]! / counts[c]! : 0);
  return out;
}
