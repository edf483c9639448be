/** Copies of one synthetic volume in other poses and storage orders, with the world map that relates them. */
import { multiplyAffines } from '../../edge-app/nifti/affine.js';
import type { NiftiVolume } from '../../edge-app/nifti/volume.js';

export type Pose = { shiftMm?: [number, number, number]; rotateDeg?: [number, number, number]; about?: [number, number, number] };

/** World → world: rotate about x, then y, then z (about `about`), then shift. */
export function poseMatrix(pose: Pose): number[] {
  const [ax, ay, az] = (pose.rotateDeg ?? [0, 0, 0]).map((d) => (d * Math.PI) / 180) as [number, number, number];
  const rx = [1, 0, 0, 0, 0, Math.cos(ax), -Math.sin(ax), 0, 0, Math.sin(ax), Math.cos(ax), 0, 0, 0, 0, 1];
  const ry = [Math.cos(ay), 0, Math.sin(ay), 0, 0, 1, 0, 0, -Math.sin(ay), 0, Math.cos(ay), 0, 0, 0, 0, 1];
  const rz = [Math.cos(az), -Math.sin(az), 0, 0, Math.sin(az), Math.cos(az), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const c = pose.about ?? [0, 0, 0];
  const [sx, sy, sz] = pose.shiftMm ?? [0, 0, 0];
  const toCentre = [1, 0, 0, -c[0], 0, 1, 0, -c[1], 0, 0, 1, -c[2], 0, 0, 0, 1];
  const back = [1, 0, 0, c[0] + sx, 0, 1, 0, c[1] + sy, 0, 0, 1, c[2] + sz, 0, 0, 0, 1];
  return multiplyAffines(back, multiplyAffines(rz, multiplyAffines(ry, multiplyAffines(rx, toCentre))));
}

/** The same voxels placed elsewhere in the world: the copy's world point is `pose` of the original's. */
export function moved(volume: NiftiVolume, pose: Pose, file = volume.file): NiftiVolume {
  return { ...volume, file, affine: multiplyAffines(poseMatrix(pose), volume.affine) };
}

/** The same head stored with the i and j axes reversed (RAS ↔ LPS storage): the world is unchanged. */
export function flippedStorage(volume: NiftiVolume, file = volume.file): NiftiVolume {
  const [nx, ny, nz] = volume.dims;
  const hu = new Float32Array(volume.hu.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) hu[(k * ny + (ny - 1 - j)) * nx + (nx - 1 - i)] = volume.hu[(k * ny + j) * nx + i]!;
    }
  }
  const flip = [-1, 0, 0, nx - 1, 0, -1, 0, ny - 1, 0, 0, 1, 0, 0, 0, 0, 1];
  return { ...volume, file, hu, affine: multiplyAffines(volume.affine, flip) };
}

/** Largest distance between where two world maps send the corners of a box (mm). */
export function maxDisplacementMm(a: readonly number[], b: readonly number[], box: { min: number[]; max: number[] }): number {
  let worst = 0;
  for (const x of [box.min[0]!, box.max[0]!]) for (const y of [box.min[1]!, box.max[1]!]) for (const z of [box.min[2]!, box.max[2]!]) {
    const pa = [0, 1, 2].map((r) => a[r * 4]! * x + a[r * 4 + 1]! * y + a[r * 4 + 2]! * z + a[r * 4 + 3]!);
    const pb = [0, 1, 2].map((r) => b[r * 4]! * x + b[r * 4 + 1]! * y + b[r * 4 + 2]! * z + b[r * 4 + 3]!);
    worst = Math.max(worst, Math.hypot(pa[0]! - pb[0]!, pa[1]! - pb[1]!, pa[2]! - pb[2]!));
  }
  return worst;
}

/** Rotation angle (degrees) of the linear part of a near-rigid map, from its trace. */
export function rotationDeg(m: readonly number[]): number {
  const trace = m[0]! + m[5]! + m[10]!;
  return (Math.acos(Math.max(-1, Math.min(1, (trace - 1) / 2))) * 180) / Math.PI;
}
