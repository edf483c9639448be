import { applyAffine } from '../nifti/affine.js';
import type { Voxels } from './downsample.js';

/** Soft tissue and bone; air, foam pads and the scanner's padding lie below. */
const HEAD_HU = [-100, 3000] as const;

export type Head = { readonly volumeMl: number; readonly centroid: readonly [number, number, number] };

/** Volume and world centroid (RAS+ mm) of everything that looks like head tissue. Pure. */
export function findHead(volume: Voxels): Head {
  const [nx, ny, nz] = volume.dims;
  let n = 0, si = 0, sj = 0, sk = 0;
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      const row = (k * ny + j) * nx;
      for (let i = 0; i < nx; i++) {
        const v = volume.hu[row + i]!;
        if (v >= HEAD_HU[0] && v <= HEAD_HU[1]) { n++; si += i; sj += j; sk += k; }
      }
    }
  }
  const a = volume.affine;
  const voxelMl = Math.abs(
    a[0]! * (a[5]! * a[10]! - a[6]! * a[9]!) - a[1]! * (a[4]! * a[10]! - a[6]! * a[8]!) + a[2]! * (a[4]! * a[9]! - a[5]! * a[8]!)) / 1000;
  return { volumeMl: n * voxelMl, centroid: n > 0 ? applyAffine(a, si / n, sj / n, sk / n) : [NaN, NaN, NaN] };
}
