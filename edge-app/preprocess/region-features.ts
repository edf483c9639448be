/**
 * Per-region evidence of aspects-region/v3 (MODEL.md "Features"): each ASPECTS
 * region of the symptomatic hemisphere compared with its mirror image, voxel by
 * voxel, on the registered 2 mm volume. Every scaling is a fixed constant, so
 * every hospital computes the same features from the same scan. Pure.
 */
import { FEATURE_GRID, gridIndex, mirrorIndex } from './feature-grid.js';

export type Hemisphere = 'L' | 'R';

export const REGION_COUNT = 10;
/** Features per region, in FEATURE_NAMES order. */
export const FEATURE_NAMES = [
  'meanDiff', // mean of the detrended difference d′ = s − c − trend, all tissue voxels, / 4 HU
  'medianDiff', // lower median of d′, / 4 HU
  'greyMeanDiff', // mean of d′ over the grey-matter voxels (all tissue voxels if fewer than 8), / 4 HU
  'lowSmoothDiff', // 10 % quantile of the smoothed d′ (5×5×5 voxels within the region), / 4 HU
  'highSmoothDiff', // 90 % quantile of the smoothed d′, / 4 HU
  'darkerFraction', // share of voxels whose smoothed d′ < −2 HU
  'brighterFraction', // share of voxels whose smoothed d′ > +2 HU
  'rawMeanDiff', // mean of s − c without detrending, / 4 HU
  'tDiff', // mean d′ / (sd(d′) / √(n / 8)), / 4
  'contrastRatio', // 2 · ln(sd(s) / sd(c)): loss of grey/white contrast is < 0
  'level', // (mean c − 30 HU) / 10 HU
  'coverage', // share of the region's voxels that are tissue on both sides
] as const;
export const FEATURE_COUNT = FEATURE_NAMES.length;
/** Every feature is clipped to ±FEATURE_CLIP. */
export const FEATURE_CLIP = 5;

/** A voxel pair counts as tissue when c ∈ [15, 60] HU and s ∈ [5, 60] HU (s may be a lesion). */
export const TISSUE_HU = Object.freeze({ contralateral: [15, 60] as const, symptomatic: [5, 60] as const });
/** Reference voxels of the trend: unlabelled tissue within this many voxels of a region, |x| ≥ 6 mm, |d| ≤ 15 HU. */
const REFERENCE_REACH = 3;
const REFERENCE_MIN_ABS_X_MM = 6;
const REFERENCE_MAX_ABS_DIFF = 15;
/** Second pass of the trend: drop reference voxels whose residual exceeds this. */
const TREND_RESIDUAL_HU = 8;
const SMOOTH_RADIUS = 2;
const DARK_HU = 2;
const DIFF_SCALE = 4;
const MIN_GREY_VOXELS = 8;

type AtlasIndex = {
  /** [side 0 = L, 1 = R][region] → feature-grid indices, ascending. */
  regions: Int32Array[][];
  /** [side] → indices of reference voxels on that side, ascending. */
  reference: Int32Array[];
  /** every labelled index (both sides), ascending */
  labelled: Int32Array;
};

const indexCache = new WeakMap<Uint8Array, AtlasIndex>();

/** Region voxel lists and trend reference voxels of an atlas on FEATURE_GRID (computed once per label array). */
export function indexAtlas(labels: Uint8Array): AtlasIndex {
  const cached = indexCache.get(labels);
  if (cached) return cached;
  const [nx, ny, nz] = FEATURE_GRID.dims;
  if (labels.length !== nx * ny * nz) throw new RangeError(`labels have ${labels.length} voxels, the feature grid ${nx * ny * nz}`);
  const lists: number[][][] = [0, 1].map(() => Array.from({ length: REGION_COUNT }, () => []));
  const labelled: number[] = [];
  for (let n = 0; n < labels.length; n++) {
    const v = labels[n]!;
    if (v === 0) continue;
    if (v > 2 * REGION_COUNT) throw new RangeError(`label ${v} at voxel ${n}: an ASPECTS atlas holds 0…20`);
    labelled.push(n);
    lists[v <= REGION_COUNT ? 0 : 1]![(v - 1) % REGION_COUNT]!.push(n);
  }
  // Unlabelled voxels near any region (or its mirror), on one side.
  const near = new Uint8Array(labels.length);
  for (const n of labelled) {
    for (const m of [n, mirrorIndex(n)]) {
      const i = m % nx, j = Math.floor(m / nx) % ny, k = Math.floor(m / (nx * ny));
      for (let dk = -REFERENCE_REACH; dk <= REFERENCE_REACH; dk++) for (let dj = -REFERENCE_REACH; dj <= REFERENCE_REACH; dj++) for (let di = -REFERENCE_REACH; di <= REFERENCE_REACH; di++) {
        const a = i + di, b = j + dj, c = k + dk;
        if (a >= 0 && b >= 0 && c >= 0 && a < nx && b < ny && c < nz) near[gridIndex(a, b, c)] = 1;
      }
    }
  }
  const reference: number[][] = [[], []];
  const x0 = FEATURE_GRID.affine[3]!, dx = FEATURE_GRID.affine[0]!;
  for (let n = 0; n < labels.length; n++) {
    if (!near[n] || labels[n] !== 0 || labels[mirrorIndex(n)] !== 0) continue;
    const x = x0 + dx * (n % nx);
    if (Math.abs(x) < REFERENCE_MIN_ABS_X_MM) continue;
    reference[x < 0 ? 0 : 1]!.push(n);
  }
  const out: AtlasIndex = {
    regions: lists.map((side) => side.map((l) => Int32Array.from(l))),
    reference: reference.map((l) => Int32Array.from(l)),
    labelled: Int32Array.from(labelled),
  };
  indexCache.set(labels, out);
  return out;
}

const isTissue = (s: number, c: number): boolean =>
  c >= TISSUE_HU.contralateral[0] && c <= TISSUE_HU.contralateral[1] && s >= TISSUE_HU.symptomatic[0] && s <= TISSUE_HU.symptomatic[1];

const TREND_ROW = new Float64Array(4);

/** [1, x/100, y/100, z/100] of a feature-grid index (world mm), the trend's regressors; valid until the next call. */
function trendRow(n: number): Float64Array {
  const [nx, ny] = FEATURE_GRID.dims;
  const a = FEATURE_GRID.affine;
  TREND_ROW[0] = 1;
  TREND_ROW[1] = (a[3]! + a[0]! * (n % nx)) / 100;
  TREND_ROW[2] = (a[7]! + a[5]! * (Math.floor(n / nx) % ny)) / 100;
  TREND_ROW[3] = (a[11]! + a[10]! * Math.floor(n / (nx * ny))) / 100;
  return TREND_ROW;
}

/**
 * Least-squares trend d ≈ β0 + β1·x + β2·y + β3·z (mm / 100) of the
 * symptomatic-minus-mirror difference over the reference voxels, fitted twice
 * (the second time without residuals over 8 HU). Cancels a smooth bias field
 * (which makes s − c grow with |x|) and any global offset. Sums in float64,
 * voxels in ascending index order. Returns β, or zeros with < 50 voxels.
 */
export function fitTrend(hu: Float32Array, reference: Int32Array): [number, number, number, number] {
  let beta: [number, number, number, number] = [0, 0, 0, 0];
  for (let pass = 0; pass < 2; pass++) {
    const ata = new Float64Array(16), atb = new Float64Array(4);
    let count = 0;
    for (const n of reference) {
      const s = hu[n]!, c = hu[mirrorIndex(n)]!;
      if (!(s === s && c === c) || !isTissue(s, c)) continue;
      const d = s - c;
      if (Math.abs(d) > REFERENCE_MAX_ABS_DIFF) continue;
      const row = trendRow(n);
      if (pass === 1 && Math.abs(d - dot(beta, row)) > TREND_RESIDUAL_HU) continue;
      count++;
      for (let a = 0; a < 4; a++) {
        atb[a]! += row[a]! * d;
        for (let b = 0; b < 4; b++) ata[a * 4 + b]! += row[a]! * row[b]!;
      }
    }
    if (count < 50) return [0, 0, 0, 0];
    const solved = solve4(ata, atb);
    if (!solved) return [0, 0, 0, 0];
    beta = solved;
  }
  return beta;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]! + a[3]! * b[3]!;

/** Gaussian elimination with partial pivoting (first largest pivot wins); undefined if singular. */
function solve4(ata: Float64Array, atb: Float64Array): [number, number, number, number] | undefined {
  const m = Array.from({ length: 4 }, (_, r) => [...ata.slice(r * 4, r * 4 + 4), atb[r]!]);
  for (let col = 0; col < 4; col++) {
    let pivot = col;
    for (let r = col + 1; r < 4; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    if (Math.abs(m[pivot]![col]!) < 1e-9) return undefined;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < 4; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let c = col; c < 5; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return [0, 1, 2, 3].map((r) => m[r]![4]! / m[r]![r]!) as [number, number, number, number];
}

/** The q-quantile of ascending `sorted`: element floor(q·(n − 1)) (no interpolation). */
export function lowerQuantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.floor(q * (sorted.length - 1))]!;
}

/** Grey/white split of this scan: midpoint of the 25 % and 75 % quantiles of every labelled tissue voxel's HU (15…60). */
export function greyThreshold(hu: Float32Array, labelled: Int32Array): number {
  const values = new Float64Array(labelled.length);
  let count = 0;
  for (const n of labelled) {
    const v = hu[n]!;
    if (v >= TISSUE_HU.contralateral[0] && v <= TISSUE_HU.contralateral[1]) values[count++] = v;
  }
  const sorted = values.subarray(0, count).sort();
  return count === 0 ? 32.5 : (lowerQuantile(sorted, 0.25) + lowerQuantile(sorted, 0.75)) / 2;
}

/**
 * FEATURE_COUNT features for each of the 10 regions of `side` (the
 * symptomatic hemisphere), [region][feature] row-major, float32. `hu` is the
 * scan on FEATURE_GRID (NaN where the scan has no data), `labels` the atlas
 * on FEATURE_GRID; `threshold` the scan's grey/white split (greyThreshold),
 * which a caller wanting both sides computes once.
 */
export function regionFeatures(hu: Float32Array, labels: Uint8Array, side: Hemisphere, threshold = greyThreshold(hu, indexAtlas(labels).labelled)): Float32Array {
  const index = indexAtlas(labels);
  if (hu.length !== labels.length) throw new RangeError(`volume has ${hu.length} voxels, the feature grid ${labels.length}`);
  const s0 = side === 'L' ? 0 : 1;
  const beta = fitTrend(hu, index.reference[s0]!);
  const out = new Float32Array(REGION_COUNT * FEATURE_COUNT);
  const scratch = diffScratch(hu.length);
  for (let r = 0; r < REGION_COUNT; r++) {
    const f = featuresOfRegion(hu, index.regions[s0]![r]!, beta, threshold, scratch);
    for (let k = 0; k < FEATURE_COUNT; k++) out[r * FEATURE_COUNT + k] = Math.max(-FEATURE_CLIP, Math.min(FEATURE_CLIP, f[k]!));
  }
  return out;
}

let scratchSpace: Float64Array | undefined;

/** One grid-sized buffer, all NaN between uses (featuresOfRegion restores it), instead of 3 MB per call. */
function diffScratch(length: number): Float64Array {
  if (scratchSpace?.length !== length) scratchSpace = new Float64Array(length).fill(NaN);
  return scratchSpace;
}

/** `diff` is scratch space of the grid's size, all NaN on entry and on return (index → d′ of this region's tissue voxels). */
function featuresOfRegion(hu: Float32Array, voxels: Int32Array, beta: readonly number[], threshold: number, diff: Float64Array): number[] {
  const [nx, ny] = FEATURE_GRID.dims;
  const tissue: number[] = [];
  let sumD = 0, sumRaw = 0, sumDD = 0, sumS = 0, sumSS = 0, sumC = 0, sumCC = 0, greyN = 0, greySum = 0;
  for (const n of voxels) {
    const s = hu[n]!, c = hu[mirrorIndex(n)]!;
    if (!(s === s && c === c) || !isTissue(s, c)) continue;
    const raw = s - c;
    const d = raw - dot(beta, trendRow(n));
    tissue.push(n);
    diff[n] = d;
    sumD += d; sumDD += d * d; sumRaw += raw;
    sumS += s; sumSS += s * s; sumC += c; sumCC += c * c;
    if (c >= threshold) { greyN++; greySum += d; }
  }
  const n = tissue.length;
  if (n === 0) return new Array<number>(FEATURE_COUNT).fill(0);
  try {
    return summarise(tissue, diff, { sumD, sumDD, sumRaw, sumS, sumSS, sumC, sumCC, greyN, greySum }, voxels.length, nx, ny);
  } finally {
    for (const t of tissue) diff[t] = NaN;
  }
}

/**
 * Smoothed d′ of each tissue voxel (in `tissue` order): the mean of d′ over the
 * region's tissue voxels within ±SMOOTH_RADIUS voxels on every axis. A box is
 * a product of three intervals, so its sums and counts are taken one axis at
 * a time over the region's bounding box (15 additions per voxel instead of 125).
 */
export function smoothWithinRegion(tissue: readonly number[], diff: Float64Array, nx: number, ny: number): Float64Array {
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (const t of tissue) {
    const c = [t % nx, Math.floor(t / nx) % ny, Math.floor(t / (nx * ny))];
    for (let a = 0; a < 3; a++) { lo[a] = Math.min(lo[a]!, c[a]!); hi[a] = Math.max(hi[a]!, c[a]!); }
  }
  const [bx, by, bz] = [0, 1, 2].map((a) => hi[a]! - lo[a]! + 1) as [number, number, number];
  const local = (t: number): number =>
    ((Math.floor(t / (nx * ny)) - lo[2]!) * by + (Math.floor(t / nx) % ny - lo[1]!)) * bx + (t % nx - lo[0]!);
  let sums = new Float64Array(bx * by * bz), counts = new Float64Array(bx * by * bz);
  for (const t of tissue) { sums[local(t)] = diff[t]!; counts[local(t)] = 1; }
  for (const [stride, length] of [[1, bx], [bx, by], [bx * by, bz]] as const) {
    sums = boxSum(sums, stride, length);
    counts = boxSum(counts, stride, length);
  }
  return Float64Array.from(tissue, (t) => sums[local(t)]! / counts[local(t)]!);
}

/** Sum over ±SMOOTH_RADIUS along one axis (given by its stride and length), clipped at the ends. */
function boxSum(values: Float64Array, stride: number, length: number): Float64Array<ArrayBuffer> {
  const out = new Float64Array(values.length);
  for (let p = 0; p < values.length; p++) {
    const at = Math.floor(p / stride) % length;
    let sum = 0;
    for (let d = Math.max(-SMOOTH_RADIUS, -at); d <= Math.min(SMOOTH_RADIUS, length - 1 - at); d++) sum += values[p + d * stride]!;
    out[p] = sum;
  }
  return out;
}

type Sums = { sumD: number; sumDD: number; sumRaw: number; sumS: number; sumSS: number; sumC: number; sumCC: number; greyN: number; greySum: number };

function summarise(tissue: readonly number[], diff: Float64Array, sums: Sums, regionVoxels: number, nx: number, ny: number): number[] {
  const { sumD, sumDD, sumRaw, sumS, sumSS, sumC, sumCC, greyN, greySum } = sums;
  const n = tissue.length;
  const mean = sumD / n;
  const sd = Math.sqrt(Math.max(0, sumDD / n - mean * mean));
  const sdS = Math.sqrt(Math.max(0, sumSS / n - (sumS / n) ** 2)), sdC = Math.sqrt(Math.max(0, sumCC / n - (sumC / n) ** 2));
  const sorted = Float64Array.from(tissue, (t) => diff[t]!).sort();
  const smooth = smoothWithinRegion(tissue, diff, nx, ny);
  let dark = 0, bright = 0;
  for (const m of smooth) {
    if (m < -DARK_HU) dark++;
    if (m > DARK_HU) bright++;
  }
  smooth.sort();
  const greyMean = greyN >= MIN_GREY_VOXELS ? greySum / greyN : mean;
  const t = sd > 0 ? mean / (sd / Math.sqrt(n / 8)) : 0;
  const contrast = sdS > 0 && sdC > 0 ? 2 * Math.log(sdS / sdC) : 0;
  return [
    mean / DIFF_SCALE,
    lowerQuantile(sorted, 0.5) / DIFF_SCALE,
    greyMean / DIFF_SCALE,
    lowerQuantile(smooth, 0.1) / DIFF_SCALE,
    lowerQuantile(smooth, 0.9) / DIFF_SCALE,
    dark / n,
    bright / n,
    sumRaw / n / DIFF_SCALE,
    t / DIFF_SCALE,
    contrast,
    (sumC / n - 30) / 10,
    n / regionVoxels,
  ];
}
