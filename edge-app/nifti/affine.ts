/** Row-major 4×4 affines (voxel → world) and the NIfTI-1 qform quaternion. */

export type Quaternion = {
  b: number; c: number; d: number;
  /** pixdim[0]: −1 flips the k axis (left-handed voxel grid), else 1. */
  qfac: 1 | -1;
  pixdim: [number, number, number];
  offset: [number, number, number];
};

/** NIfTI-1 "method 2": R(b, c, d) · diag(dx, dy, qfac·dz) + offset (as nifti1_io.c). */
export function quaternionToAffine(q: Quaternion): number[] {
  let { b, c, d } = q;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    // 180° rotation: a is 0 and (b, c, d) must be renormalised.
    const norm = Math.hypot(b, c, d);
    a = 0; b /= norm; c /= norm; d /= norm;
  } else {
    a = Math.sqrt(a);
  }
  const [dx, dy, dz0] = q.pixdim.map((p) => (p > 0 ? p : 1)) as [number, number, number];
  const dz = q.qfac * dz0;
  return [
    (a * a + b * b - c * c - d * d) * dx, 2 * (b * c - a * d) * dy, 2 * (b * d + a * c) * dz, q.offset[0],
    2 * (b * c + a * d) * dx, (a * a + c * c - b * b - d * d) * dy, 2 * (c * d - a * b) * dz, q.offset[1],
    2 * (b * d - a * c) * dx, 2 * (c * d + a * b) * dy, (a * a + d * d - c * c - b * b) * dz, q.offset[2],
    0, 0, 0, 1,
  ];
}

/**
 * The qform that best represents an affine: zooms are the column norms, the
 * rotation is the orthonormalised remainder (as nifti_mat44_to_quatern).
 */
export function affineToQuaternion(m: readonly number[]): Quaternion {
  const col = (j: number): [number, number, number] => [m[j]!, m[4 + j]!, m[8 + j]!];
  let c0 = col(0), c1 = col(1), c2 = col(2);
  const pixdim: [number, number, number] = [norm(c0), norm(c1), norm(c2)];
  c0 = scale(c0, 1 / pixdim[0]);
  // Gram–Schmidt, so a slightly sheared affine still gives a proper rotation.
  c1 = normalise(sub(c1, scale(c0, dot(c0, c1))));
  c2 = normalise(sub(sub(c2, scale(c0, dot(c0, c2))), scale(c1, dot(c1, c2))));
  let qfac: 1 | -1 = 1;
  if (dot(cross(c0, c1), c2) < 0) { qfac = -1; c2 = scale(c2, -1); }
  const [r11, r21, r31] = c0, [r12, r22, r32] = c1, [r13, r23, r33] = c2;
  let a = r11 + r22 + r33 + 1, b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = 0.25 * (r32 - r23) / a; c = 0.25 * (r13 - r31) / a; d = 0.25 * (r21 - r12) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33), yd = 1 + r22 - (r11 + r33), zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd); c = 0.25 * (r12 + r21) / b; d = 0.25 * (r13 + r31) / b; a = 0.25 * (r32 - r23) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd); b = 0.25 * (r12 + r21) / c; d = 0.25 * (r23 + r32) / c; a = 0.25 * (r13 - r31) / c;
    } else {
      d = 0.5 * Math.sqrt(zd); b = 0.25 * (r13 + r31) / d; c = 0.25 * (r23 + r32) / d; a = 0.25 * (r21 - r12) / d;
    }
    if (a < 0) { b = -b; c = -c; d = -d; }
  }
  return { b, c, d, qfac, pixdim, offset: [m[3]!, m[7]!, m[11]!] };
}

export function diagonalAffine(pixdim: readonly [number, number, number]): number[] {
  return [pixdim[0], 0, 0, 0, 0, pixdim[1], 0, 0, 0, 0, pixdim[2], 0, 0, 0, 0, 1];
}

export function determinant3(m: readonly number[]): number {
  const [a, b, c, , d, e, f, , g, h, i] = m as number[];
  return a! * (e! * i! - f! * h!) - b! * (d! * i! - f! * g!) + c! * (d! * h! - e! * g!);
}

/** Inverse of an affine whose last row is 0 0 0 1. */
export function invertAffine(m: readonly number[]): number[] {
  const [a, b, c, tx, d, e, f, ty, g, h, i, tz] = m as number[];
  const det = determinant3(m);
  const r = [
    (e! * i! - f! * h!) / det, (c! * h! - b! * i!) / det, (b! * f! - c! * e!) / det,
    (f! * g! - d! * i!) / det, (a! * i! - c! * g!) / det, (c! * d! - a! * f!) / det,
    (d! * h! - e! * g!) / det, (b! * g! - a! * h!) / det, (a! * e! - b! * d!) / det,
  ] as [number, number, number, number, number, number, number, number, number];
  return [
    r[0], r[1], r[2], -(r[0] * tx! + r[1] * ty! + r[2] * tz!),
    r[3], r[4], r[5], -(r[3] * tx! + r[4] * ty! + r[5] * tz!),
    r[6], r[7], r[8], -(r[6] * tx! + r[7] * ty! + r[8] * tz!),
    0, 0, 0, 1,
  ];
}

export function multiplyAffines(p: readonly number[], q: readonly number[]): number[] {
  const out = new Array<number>(16).fill(0);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += p[r * 4 + k]! * q[k * 4 + c]!;
      out[r * 4 + c] = s;
    }
  }
  return out;
}

export function applyAffine(m: readonly number[], i: number, j: number, k: number): [number, number, number] {
  return [
    m[0]! * i + m[1]! * j + m[2]! * k + m[3]!,
    m[4]! * i + m[5]! * j + m[6]! * k + m[7]!,
    m[8]! * i + m[9]! * j + m[10]! * k + m[11]!,
  ];
}

type Vec3 = [number, number, number];
const dot = (u: Vec3, v: Vec3): number => u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
const norm = (u: Vec3): number => Math.sqrt(dot(u, u));
const scale = (u: Vec3, s: number): Vec3 => [u[0] * s, u[1] * s, u[2] * s];
const sub = (u: Vec3, v: Vec3): Vec3 => [u[0] - v[0], u[1] - v[1], u[2] - v[2]];
const normalise = (u: Vec3): Vec3 => scale(u, 1 / norm(u));
const cross = (u: Vec3, v: Vec3): Vec3 => [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
