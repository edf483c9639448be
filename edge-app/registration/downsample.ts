import { multiplyAffines } from '../nifti/affine.js';
import type { NiftiVolume } from '../nifti/volume.js';

export type Voxels = Pick<NiftiVolume, 'dims' | 'hu' | 'affine'>;

/**
 * Averages blocks of whole voxels so no axis is finer than `targetMm`: a
 * 0.45 mm CT slice sampled straight at 2 mm would alias its noise into the
 * registration metric. Trailing partial blocks are dropped. Pure.
 */
export function blockAverage(volume: Voxels, targetMm: number): Voxels {
  const a = volume.affine;
  const factors = [0, 1, 2].map((c) => Math.max(1, Math.floor(targetMm / Math.hypot(a[c]!, a[4 + c]!, a[8 + c]!)))) as [number, number, number];
  if (factors.every((f) => f === 1)) return volume;
  const [fx, fy, fz] = factors;
  const [nx, ny, nz] = volume.dims;
  const dims = [Math.max(1, Math.floor(nx / fx)), Math.max(1, Math.floor(ny / fy)), Math.max(1, Math.floor(nz / fz))] as const;
  const [mx, my, mz] = dims;
  const hu = new Float32Array(mx * my * mz);
  const counts = new Uint16Array(mx * my * mz);
  for (let k = 0; k < Math.min(nz, mz * fz); k++) {
    for (let j = 0; j < Math.min(ny, my * fy); j++) {
      const src = (k * ny + j) * nx;
      const dst = (((k / fz) | 0) * my + ((j / fy) | 0)) * mx;
      for (let i = 0; i < Math.min(nx, mx * fx); i++) {
        const v = volume.hu[src + i]!;
        if (v !== v) continue; // NaN carries no information
        hu[dst + ((i / fx) | 0)]! += v;
        counts[dst + ((i / fx) | 0)]!++;
      }
    }
  }
  for (let n = 0; n < hu.length; n++) hu[n] = counts[n]! > 0 ? hu[n]! / counts[n]! : NaN;
  // Block (i', j', k') is centred on source voxel f·i' + (f − 1)/2.
  const toSource = [fx, 0, 0, (fx - 1) / 2, 0, fy, 0, (fy - 1) / 2, 0, 0, fz, (fz - 1) / 2, 0, 0, 0, 1];
  return { dims, hu, affine: multiplyAffines(volume.affine, toSource) };
}
