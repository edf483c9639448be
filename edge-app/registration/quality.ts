import { DataInvalid } from '../../sdk/index.js';
import { ATLAS_LABELS, type LabelVolume } from '../atlas/aspects-atlas.js';
import type { VoxelGrid } from '../atlas/mni-grid.js';
import { REGION_NAMES } from '../cohort/regions.js';
import { applyAffine, invertAffine, multiplyAffines } from '../nifti/affine.js';
import type { Voxels } from './downsample.js';

export type RegistrationQuality = {
  /** elastix's final Mattes mutual information (negative; lower is better). */
  finalMetric: number;
  /** Pearson r of each left ASPECTS voxel with its mirror on the right, in the registered, windowed scan. */
  symmetry: number;
  /** Share of the atlas's voxels the scan's field of view covers, per ASPECTS level. */
  coverage: { ganglionic: number; supraganglionic: number };
};

export type QualityLimits = { maxFinalMetric: number; minSymmetry: number; minCoverage: number };

/**
 * Measured on synthetic heads (docs/registration.md): good registrations gave a
 * final metric of −1.15…−1.31 and a symmetry of 0.37…0.72; a failed one −0.43;
 * a 5 mm midline error a symmetry below 0. Not yet calibrated on real scans.
 */
export const QUALITY_LIMITS: QualityLimits = Object.freeze({ maxFinalMetric: -0.5, minSymmetry: 0.25, minCoverage: 0.9 });

/** The last "Final metric value = …" of an elastix log. Pure. */
export function parseFinalMetric(log: string): number {
  const values = [...log.matchAll(/Final metric value\s*=\s*(\S+)/g)].map((m) => Number(m[1]));
  return values.at(-1) ?? NaN;
}

/** The ASPECTS level of each label: C…M3 ganglionic, M4…M6 supraganglionic. */
const LEVEL_OF_LABEL = new Map(ATLAS_LABELS.map((l) => [l.value, REGION_NAMES.indexOf(l.region) < 7 ? 'ganglionic' as const : 'supraganglionic' as const]));
const LEFT_LABELS = new Set(ATLAS_LABELS.filter((l) => l.side === 'L').map((l) => l.value));

/**
 * Mid-sagittal symmetry of a registered scan: correlation between each voxel
 * of the left ASPECTS regions and its mirror (−x) in the right ones.
 * `fromTemplate` maps template world → the world of `scan`. Pure.
 */
export function midSagittalSymmetry(scan: Voxels, fromTemplate: readonly number[], atlas: LabelVolume): number {
  const toScanVoxel = multiplyAffines(invertAffine(scan.affine), fromTemplate);
  let n = 0, sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (const [i, j, k, label] of labelledVoxels(atlas)) {
    if (!LEFT_LABELS.has(label)) continue;
    const p = applyAffine(atlas.affine, i, j, k);
    const a = sampleNearest(scan, applyAffine(toScanVoxel, ...p));
    const b = sampleNearest(scan, applyAffine(toScanVoxel, -p[0], p[1], p[2]));
    if (a !== a || b !== b) continue;
    n++; sa += a; sb += b; saa += a * a; sbb += b * b; sab += a * b;
  }
  if (n < 100) return NaN;
  const cov = sab / n - (sa / n) * (sb / n);
  const va = saa / n - (sa / n) ** 2, vb = sbb / n - (sb / n) ** 2;
  return va > 0 && vb > 0 ? cov / Math.sqrt(va * vb) : 0;
}

/**
 * Share of the atlas voxels of each ASPECTS level that fall inside the scan's
 * field of view; `fromTemplate` maps template world → scan world. Pure.
 */
export function aspectsCoverage(scan: VoxelGrid, fromTemplate: readonly number[], atlas: LabelVolume): RegistrationQuality['coverage'] {
  const toScanVoxel = multiplyAffines(invertAffine(scan.affine), multiplyAffines(fromTemplate, atlas.affine));
  const counts = { ganglionic: [0, 0], supraganglionic: [0, 0] };
  for (const [i, j, k, label] of labelledVoxels(atlas)) {
    const level = LEVEL_OF_LABEL.get(label);
    if (!level) continue;
    const v = applyAffine(toScanVoxel, i, j, k);
    const inside = v.every((c, a) => c > -0.5 && c < scan.dims[a]! - 0.5);
    counts[level][0]!++;
    if (inside) counts[level][1]!++;
  }
  const share = ([all, inside]: number[]) => (all! > 0 ? inside! / all! : 0);
  return { ganglionic: share(counts.ganglionic), supraganglionic: share(counts.supraganglionic) };
}

/** Refuses a registration whose figures are outside the limits, naming the file and the figure. Pure. */
export function judgeQuality(file: string, quality: RegistrationQuality, limits: QualityLimits = QUALITY_LIMITS): void {
  const fail = (figure: string, message: string): never => {
    throw new DataInvalid(`${file}: ${message}`, { file, reason: 'registration-quality', figure, quality, limits });
  };
  const pct = (v: number) => `${(100 * v).toFixed(0)} %`;
  for (const level of ['ganglionic', 'supraganglionic'] as const) {
    const c = quality.coverage[level];
    if (!(c >= limits.minCoverage)) fail(`coverage.${level}`, `the scan covers ${pct(c)} of the ${level} ASPECTS level after registration (needs ${pct(limits.minCoverage)})`);
  }
  if (!(quality.finalMetric <= limits.maxFinalMetric)) {
    fail('finalMetric', `registration to the template failed: final mutual information ${quality.finalMetric.toFixed(3)} (needs ≤ ${limits.maxFinalMetric})`);
  }
  if (!(quality.symmetry >= limits.minSymmetry)) {
    fail('symmetry', `registration to the template failed: mid-sagittal symmetry ${quality.symmetry.toFixed(2)} (needs ≥ ${limits.minSymmetry})`);
  }
}

const labelledCache = new WeakMap<Uint8Array, [number, number, number, number][]>();

/** (i, j, k, label) of every labelled atlas voxel, in storage order; a few % of the grid. */
function labelledVoxels(atlas: LabelVolume): [number, number, number, number][] {
  let list = labelledCache.get(atlas.labels);
  if (!list) {
    list = [];
    const [nx, ny] = atlas.dims;
    atlas.labels.forEach((label, n) => {
      if (label !== 0) list!.push([n % nx, Math.floor(n / nx) % ny, Math.floor(n / (nx * ny)), label]);
    });
    labelledCache.set(atlas.labels, list);
  }
  return list;
}

function sampleNearest(v: Voxels, p: readonly number[]): number {
  const i = Math.round(p[0]!), j = Math.round(p[1]!), k = Math.round(p[2]!);
  const [nx, ny, nz] = v.dims;
  if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) return NaN;
  return v.hu[(k * ny + j) * nx + i]!;
}
