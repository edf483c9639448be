/**
 * Is there a head in the field of view? Real scans keep the head wherever the table put it (a
 * metre off in z is normal), so before a volume is trained on or evaluated we look for a skull
 * with a brain-sized blob of brain-range tissue inside it, and refuse the volume otherwise.
 *
 * The measure works on a copy block-averaged to about 2 mm (≈ 50 ms at 512² × 36, and the average
 * tames scanner noise). "Inside the skull" is inside the convex hull of the bone, plane by plane
 * in the voxel planes closest to axial (see insideBoneHull): not a 3-D fill from the border, since
 * the brain touches the first and last slices of a scan and a fill would leak in through them.
 * Whether the head covers the ASPECTS levels is judged after registration, not here.
 */
import { DataInvalid } from '../../sdk/index.js';
import { determinant3 } from '../nifti/affine.js';
import type { NiftiVolume } from '../nifti/volume.js';

export type HeadMeasure = {
  /** Volume of bone-range blocks (≥ HEAD_LIMITS.boneMinHu after averaging), mL. */
  boneMl: number;
  /** The largest 6-connected blob of brain-range blocks enclosed by bone, mL. */
  brainMl: number;
};

export const HEAD_LIMITS = {
  blockMm: 2,
  /** Skull is 700–1900 HU; 300 keeps 2 mm blocks half in bone. */
  boneMinHu: 300,
  /** CSF 0–15, white 20–30, grey 37–45, fresh blood up to ~90 HU. */
  brainHu: [-5, 90] as const,
  /** Adult brain and CSF are 1100–1700 mL; 600 leaves room for a partial or atrophic head. */
  brainMinMl: 600,
  /** The skull hull of a plane also takes the bone of planes this close (see insideBoneHull). */
  hullReachMm: 10,
  /** More than any skull holds (synthetic heads reach 2.1 L): the blob is something else, a body or a phantom. */
  brainMaxMl: 3000,
};

/** Measures bone and enclosed brain-range tissue. Pure. */
export function measureHead(volume: Pick<NiftiVolume, 'dims' | 'hu' | 'affine'>): HeadMeasure {
  const grid = blockAverage(volume);
  const { dims, hu } = grid;
  const cells = hu.length;
  const blockMl = grid.blockMl;
  const bone = new Uint8Array(cells);
  let boneCells = 0;
  for (let n = 0; n < cells; n++) {
    if (hu[n]! >= HEAD_LIMITS.boneMinHu) { bone[n] = 1; boneCells++; }
  }
  const axis = axialAxis(volume.affine);
  const inside = insideBoneHull(bone, dims, axis, grid.spacingMm[axis]);
  const [lo, hi] = HEAD_LIMITS.brainHu;
  const candidate = new Uint8Array(cells);
  for (let n = 0; n < cells; n++) {
    const v = hu[n]!;
    if (!bone[n] && inside[n] && v >= lo && v <= hi) candidate[n] = 1;
  }
  return { boneMl: boneCells * blockMl, brainMl: largestComponent(candidate, dims) * blockMl };
}

/** Why the measure is not a head, or undefined when it is. Pure. */
export function headProblem(m: HeadMeasure): string | undefined {
  const ml = (v: number): string => `${Math.round(v)} mL`;
  const [lo, hi] = HEAD_LIMITS.brainHu;
  if (m.brainMl < HEAD_LIMITS.brainMinMl) {
    return `no head found in the field of view: ${ml(m.brainMl)} of brain-range tissue (${lo}…${hi} HU) inside a skull, `
      + `need at least ${HEAD_LIMITS.brainMinMl} mL (${ml(m.boneMl)} of bone ≥ ${HEAD_LIMITS.boneMinHu} HU)`;
  }
  if (m.brainMl > HEAD_LIMITS.brainMaxMl) {
    return `not a head: ${ml(m.brainMl)} of brain-range tissue (${lo}…${hi} HU) inside bone, more than a skull holds (at most ${HEAD_LIMITS.brainMaxMl} mL)`;
  }
  return undefined;
}

/** Refuses a volume without a head in its field of view, naming its file. */
export function requireHead(volume: NiftiVolume): HeadMeasure {
  const measure = measureHead(volume);
  const problem = headProblem(measure);
  if (problem !== undefined) throw new DataInvalid(`${volume.file}: ${problem}`, { file: volume.file, reason: 'no-head', ...measure });
  return measure;
}

type Grid = { dims: [number, number, number]; hu: Float32Array; blockMl: number; spacingMm: [number, number, number] };

/** Mean HU over blocks of about blockMm per axis (a trailing partial block is dropped). */
function blockAverage(volume: Pick<NiftiVolume, 'dims' | 'hu' | 'affine'>): Grid {
  const [nx, ny, nz] = volume.dims;
  const a = volume.affine;
  const spacing = [0, 1, 2].map((c) => Math.hypot(a[c]!, a[4 + c]!, a[8 + c]!));
  const [sx, sy, sz] = spacing.map((mm) => Math.max(1, Math.floor(HEAD_LIMITS.blockMm / mm))) as [number, number, number];
  const dims: [number, number, number] = [Math.floor(nx / sx), Math.floor(ny / sy), Math.floor(nz / sz)];
  const [mx, my, mz] = dims;
  const sum = new Float32Array(mx * my * mz);
  for (let k = 0; k < mz * sz; k++) {
    const plane = ((k / sz) | 0) * my;
    for (let j = 0; j < my * sy; j++) {
      const row = (plane + ((j / sy) | 0)) * mx;
      const src = (k * ny + j) * nx;
      for (let i = 0; i < mx * sx; i++) sum[row + ((i / sx) | 0)]! += volume.hu[src + i]!;
    }
  }
  const perBlock = 1 / (sx * sy * sz);
  for (let n = 0; n < sum.length; n++) sum[n]! *= perBlock;
  return { dims, hu: sum, blockMl: (Math.abs(determinant3(a)) * sx * sy * sz) / 1000, spacingMm: [spacing[0]! * sx, spacing[1]! * sy, spacing[2]! * sz] };
}

/** The voxel axis closest to world superior–inferior: planes across it are the near-axial ones. */
function axialAxis(affine: readonly number[]): 0 | 1 | 2 {
  const cosine = [0, 1, 2].map((c) => Math.abs(affine[8 + c]!) / Math.hypot(affine[c]!, affine[4 + c]!, affine[8 + c]!));
  return cosine.indexOf(Math.max(...cosine)) as 0 | 1 | 2;
}

/**
 * Cells inside the convex hull of the bone cells of each plane and its neighbours within
 * hullReachMm. A hull rather than a flood fill from the border: a skull ring with gaps (foramina,
 * orbits, a thin or coarsely sampled skull) would let a fill leak into the whole brain, while the
 * hull of a gappy ring is still the ring, and the neighbour planes fill in a plane whose ring is
 * mostly missing. The scalp lies outside, so scalp and muscle in the brain HU range are not counted.
 */
function insideBoneHull(bone: Uint8Array, dims: readonly [number, number, number], axis: 0 | 1 | 2, planeSpacingMm: number): Uint8Array {
  const strides = [1, dims[0], dims[0] * dims[1]];
  const [u, v] = ([0, 1, 2] as const).filter((a) => a !== axis) as [number, number];
  const nu = dims[u]!, nv = dims[v]!, su = strides[u]!, sv = strides[v]!;
  const inside = new Uint8Array(bone.length);
  const nw = dims[axis], sw = strides[axis]!;
  const reach = Math.max(1, Math.round(HEAD_LIMITS.hullReachMm / planeSpacingMm));
  for (let w = 0; w < nw; w++) {
    const base = w * sw;
    const points: [number, number][] = [];
    for (let a = 0; a < nu; a++) {
      for (let b = 0; b < nv; b++) {
        for (let x = Math.max(0, w - reach); x <= Math.min(nw - 1, w + reach); x++) {
          if (bone[x * sw + a * su + b * sv]) { points.push([a, b]); break; }
        }
      }
    }
    const hull = convexHull(points);
    if (hull.length < 3) continue;
    for (let a = 0; a < nu; a++) {
      const span = hullSpan(hull, a);
      if (span === undefined) continue;
      for (let b = Math.max(0, Math.ceil(span[0])); b <= Math.min(nv - 1, Math.floor(span[1])); b++) inside[base + a * su + b * sv] = 1;
    }
  }
  return inside;
}

/** Andrew's monotone chain; points sorted by (a, b) already, as insideBoneHull collects them. Counter-clockwise, no collinear points. */
function convexHull(points: readonly (readonly [number, number])[]): [number, number][] {
  if (points.length < 3) return points.map(([a, b]) => [a, b]);
  const cross = (o: readonly number[], p: readonly number[], q: readonly number[]): number => (p[0]! - o[0]!) * (q[1]! - o[1]!) - (p[1]! - o[1]!) * (q[0]! - o[0]!);
  const chain = (ordered: readonly (readonly [number, number])[]): [number, number][] => {
    const out: [number, number][] = [];
    for (const p of ordered) {
      while (out.length >= 2 && cross(out[out.length - 2]!, out[out.length - 1]!, p) <= 0) out.pop();
      out.push([p[0], p[1]]);
    }
    out.pop();
    return out;
  };
  return [...chain(points), ...chain([...points].reverse())];
}

/** The [min, max] of b where the line a = const crosses the convex polygon, if it does. */
function hullSpan(hull: readonly (readonly [number, number])[], a: number): [number, number] | undefined {
  let lo = Infinity, hi = -Infinity;
  for (let n = 0; n < hull.length; n++) {
    const [a0, b0] = hull[n]!, [a1, b1] = hull[(n + 1) % hull.length]!;
    if ((a < Math.min(a0, a1)) || (a > Math.max(a0, a1))) continue;
    if (a0 === a1) { lo = Math.min(lo, b0, b1); hi = Math.max(hi, b0, b1); continue; }
    const b = b0 + ((a - a0) / (a1 - a0)) * (b1 - b0);
    lo = Math.min(lo, b); hi = Math.max(hi, b);
  }
  return lo <= hi ? [lo, hi] : undefined;
}

/** Size in cells of the largest 6-connected component of `mask`. */
function largestComponent(mask: Uint8Array, dims: readonly [number, number, number]): number {
  const [mx, my, mz] = dims;
  const plane = mx * my;
  const seen = new Uint8Array(mask.length);
  const queue = new Int32Array(mask.length);
  let largest = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let head = 0, tail = 0, size = 0;
    seen[start] = 1;
    queue[tail++] = start;
    while (head < tail) {
      const n = queue[head++]!;
      size++;
      const i = n % mx, j = ((n / mx) | 0) % my, k = (n / plane) | 0;
      const push = (m: number): void => {
        if (mask[m] && !seen[m]) { seen[m] = 1; queue[tail++] = m; }
      };
      if (i > 0) push(n - 1);
      if (i < mx - 1) push(n + 1);
      if (j > 0) push(n - mx);
      if (j < my - 1) push(n + mx);
      if (k > 0) push(n - plane);
      if (k < mz - 1) push(n + plane);
    }
    if (size > largest) largest = size;
  }
  return largest;
}
