/**
 * What the synthetic NCCT generator varies, as data: a profile names the
 * scanners (sites) a cohort comes from, the head pose, the lesions and the
 * coverage. Profiles are plain values; `withOverrides` returns a new one.
 * Pure; no I/O.
 *
 * Real NCCT is stored in scanner space (DESIGN §9): the head sits wherever the
 * table put it, often tilted by the gantry, in any axis order. Sites differ in
 * slice thickness, noise, storage type and case mix; the default job's two
 * hospitals differ on purpose (non-IID), and its test set mixes both.
 */

export type Range = readonly [lo: number, hi: number];

/** How voxels are stored: int16 HU (scl_inter 0), uint16 with scl_inter −1024 (raw = HU + 1024), float32 HU. */
export const SYNTH_STORAGES = ['int16', 'uint16', 'float32'] as const;
export type SynthStorage = (typeof SYNTH_STORAGES)[number];

/** The NIfTI storage options of each storage type. */
export const STORAGE_OPTIONS: Readonly<Record<SynthStorage, { datatype: SynthStorage; sclSlope: number; sclInter: number }>> = {
  int16: { datatype: 'int16', sclSlope: 1, sclInter: 0 },
  uint16: { datatype: 'uint16', sclSlope: 1, sclInter: -1024 },
  float32: { datatype: 'float32', sclSlope: 1, sclInter: 0 },
};

/** One scanner (one site's protocol): what a volume from it looks like. */
export type SynthScanner = {
  readonly name: string;
  /** Slice thickness = spacing, mm; each volume draws one. */
  readonly sliceMm: readonly number[];
  /** Scanner noise σ, HU. */
  readonly noiseHu: Range;
  /** Amplitude of the weak smooth bias field (cupping + a linear gradient), HU. */
  readonly biasHu: Range;
  /** Gantry tilt, degrees (stored as a sheared affine, as scanners and dcm2niix without tilt correction do). */
  readonly tiltDeg: Range;
  readonly storage: readonly SynthStorage[];
  /** Array axis order: 3 letters, the first two in-plane (R/L and A/P in either order), the last S or I. */
  readonly orientation: readonly string[];
  /** Probability that a volume from this site shows any ischaemic change (the site's case mix). */
  readonly lesionRate: number;
};

export type SynthProfile = {
  readonly name: string;
  /** Each volume draws one of these, uniformly. */
  readonly scanners: readonly SynthScanner[];
  readonly pose: {
    /** Head shift in world x and y, up to ± this many mm. */
    readonly shiftMm: number;
    /** Head rotation about each axis, up to ± this many degrees. */
    readonly rotationDeg: number;
    /** World z of the head centre: the scanner table offset, mm. */
    readonly tableZMm: Range;
    /** Head size relative to the MNI head. */
    readonly scale: Range;
  };
  readonly lesion: {
    /** HU drop of ischaemic tissue. */
    readonly dropHu: Range;
    /** Probability of each region being affected in a lesioned hemisphere. */
    readonly regionRate: number;
    /** Lesion size relative to its region (below 1 covers only part of it). */
    readonly extent: Range;
    /** Width of the lesion's blurred border, mm. */
    readonly borderMm: Range;
  };
  /** Craniocaudal coverage of the scan, mm. */
  readonly coverageMm: Range;
};

const HOSPITAL_A: SynthScanner = {
  name: 'hospital-a', sliceMm: [1, 2.5, 2.5, 2.5], noiseHu: [3, 4.5], biasHu: [0, 1.5], tiltDeg: [0, 6],
  storage: ['int16'], orientation: ['LPS'], lesionRate: 0.85,
};
const HOSPITAL_B: SynthScanner = {
  name: 'hospital-b', sliceMm: [5], noiseHu: [4.5, 6], biasHu: [1, 3], tiltDeg: [8, 15],
  storage: ['uint16', 'float32'], orientation: ['RAS', 'LAS'], lesionRate: 0.65,
};

const DEFAULT_POSE: SynthProfile['pose'] = { shiftMm: 10, rotationDeg: 8, tableZMm: [-1300, -1100], scale: [0.95, 1.05] };
const DEFAULT_LESION: SynthProfile['lesion'] = { dropHu: [2, 8], regionRate: 0.3, extent: [0.6, 1.3], borderMm: [2, 5] };

export const SYNTH_PROFILES: Readonly<Record<string, SynthProfile>> = {
  /** Thin slices, low noise, int16 LPS (dcm2niix-like), small tilt, many strokes. */
  'hospital-a': { name: 'hospital-a', scanners: [HOSPITAL_A], pose: DEFAULT_POSE, lesion: DEFAULT_LESION, coverageMm: [140, 170] },
  /** 5 mm slices, more noise and bias, uint16/float32 RAS/LAS, 8–15° tilt, fewer strokes. */
  'hospital-b': { name: 'hospital-b', scanners: [HOSPITAL_B], pose: DEFAULT_POSE, lesion: DEFAULT_LESION, coverageMm: [140, 170] },
  /** Each volume from hospital A's or B's scanner: the default job's test set. */
  mixed: { name: 'mixed', scanners: [HOSPITAL_A, HOSPITAL_B], pose: DEFAULT_POSE, lesion: DEFAULT_LESION, coverageMm: [140, 170] },
  /**
   * Not used by the default job: every setting drawn independently per volume over the whole range
   * (1 / 2.5 / 5 mm, all storage types and orientations, tilt 0–15°), 4–6 HU noise, 3–8 HU lesions,
   * another case mix and wider anatomy. For testing generalisation (issue 9's independent cohort).
   */
  independent: {
    name: 'independent',
    scanners: [{
      name: 'independent', sliceMm: [1, 2.5, 5], noiseHu: [4, 6], biasHu: [0, 3], tiltDeg: [0, 15],
      storage: ['int16', 'uint16', 'float32'], orientation: ['RAS', 'LPS', 'LAS'], lesionRate: 0.75,
    }],
    pose: { shiftMm: 10, rotationDeg: 8, tableZMm: [-1300, -1100], scale: [0.92, 1.08] },
    lesion: { dropHu: [3, 8], regionRate: 0.35, extent: [0.5, 1.4], borderMm: [1.5, 6] },
    coverageMm: [130, 180],
  },
  /**
   * The head at its MNI place, untilted, RAS, 5 mm int16, as after a perfect registration: for
   * separating the effect of pose from the rest. Not scanner-like.
   */
  aligned: {
    name: 'aligned',
    scanners: [{ ...HOSPITAL_B, name: 'aligned', sliceMm: [5], noiseHu: [3, 5], biasHu: [0, 0], tiltDeg: [0, 0], storage: ['int16'], orientation: ['RAS'], lesionRate: 0.85 }],
    pose: { shiftMm: 0, rotationDeg: 0, tableZMm: [0, 0], scale: [0.95, 1.05] },
    lesion: DEFAULT_LESION,
    coverageMm: [140, 170],
  },
};

export const DEFAULT_SYNTH_PROFILE = 'mixed';

/** Settings a user may override on top of a profile; each applies to every scanner of the profile. */
export type SynthOverrides = {
  readonly sliceMm?: readonly number[];
  readonly noiseHu?: Range;
  readonly biasHu?: Range;
  readonly tiltDeg?: Range;
  readonly storage?: readonly SynthStorage[];
  readonly orientation?: readonly string[];
  readonly lesionRate?: number;
  readonly shiftMm?: number;
  readonly rotationDeg?: number;
  readonly tableZMm?: Range;
  readonly dropHu?: Range;
  readonly regionRate?: number;
};

/** The profile with the overrides applied (name suffixed with `+custom` when any is given). */
export function withOverrides(profile: SynthProfile, o: SynthOverrides): SynthProfile {
  const scannerKeys = ['sliceMm', 'noiseHu', 'biasHu', 'tiltDeg', 'storage', 'orientation', 'lesionRate'] as const;
  const given = Object.entries(o).filter(([, v]) => v !== undefined);
  if (given.length === 0) return profile;
  const scannerPatch = Object.fromEntries(given.filter(([k]) => (scannerKeys as readonly string[]).includes(k)));
  return {
    name: `${profile.name}+custom`,
    scanners: profile.scanners.map((s) => ({ ...s, ...scannerPatch })),
    pose: {
      ...profile.pose,
      ...(o.shiftMm !== undefined ? { shiftMm: o.shiftMm } : {}),
      ...(o.rotationDeg !== undefined ? { rotationDeg: o.rotationDeg } : {}),
      ...(o.tableZMm !== undefined ? { tableZMm: o.tableZMm } : {}),
    },
    lesion: { ...profile.lesion, ...(o.dropHu !== undefined ? { dropHu: o.dropHu } : {}), ...(o.regionRate !== undefined ? { regionRate: o.regionRate } : {}) },
    coverageMm: profile.coverageMm,
  };
}

/** Why a profile cannot be generated, or undefined. Pure. */
export function profileProblem(p: SynthProfile): string | undefined {
  const range = (what: string, r: Range, lo: number, hi: number) =>
    !(Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] <= r[1] && r[0] >= lo && r[1] <= hi) ? `${what} must be a range within ${lo}…${hi}, got ${r[0]}:${r[1]}` : undefined;
  if (p.scanners.length === 0) return 'no scanners';
  for (const s of p.scanners) {
    const problem =
      (s.sliceMm.length === 0 || s.sliceMm.some((v) => !(v >= 0.5 && v <= 10)) ? `slice thickness must be 0.5–10 mm, got ${s.sliceMm.join(',')}` : undefined) ??
      range('noise', s.noiseHu, 0, 50) ?? range('bias', s.biasHu, 0, 50) ?? range('tilt', s.tiltDeg, -30, 30) ??
      (s.storage.length === 0 || s.storage.some((v) => !(SYNTH_STORAGES as readonly string[]).includes(v)) ? `storage must be among ${SYNTH_STORAGES.join(', ')}` : undefined) ??
      (s.orientation.length === 0 ? 'no orientation' : s.orientation.map(orientationProblem).find((x) => x !== undefined)) ??
      (!(s.lesionRate >= 0 && s.lesionRate <= 1) ? `lesion rate must be 0–1, got ${s.lesionRate}` : undefined);
    if (problem) return problem;
  }
  return range('rotation', [0, p.pose.rotationDeg], 0, 30) ?? range('shift', [0, p.pose.shiftMm], 0, 50) ?? range('table z', p.pose.tableZMm, -3000, 3000) ??
    range('head scale', p.pose.scale, 0.7, 1.3) ?? range('lesion HU', p.lesion.dropHu, 0, 1000) ??
    (!(p.lesion.regionRate >= 0 && p.lesion.regionRate <= 1) ? `region rate must be 0–1, got ${p.lesion.regionRate}` : undefined) ??
    range('lesion extent', p.lesion.extent, 0.2, 3) ?? range('lesion border', p.lesion.borderMm, 0, 20) ?? range('coverage', p.coverageMm, 60, 300);
}

/** Why an orientation code is not one the generator writes, or undefined. */
export function orientationProblem(code: string): string | undefined {
  if (!/^[RLAP][RLAP][SI]$/.test(code)) return `orientation '${code}' must be 3 letters: two in-plane (R or L, A or P, either order) then S or I`;
  const axes = new Set([...code.slice(0, 2)].map((c) => ('RL'.includes(c) ? 'x' : 'y')));
  if (axes.size !== 2) return `orientation '${code}' names the same axis twice`;
  return undefined;
}

/** One-line description of a profile for logs and help. */
export function describeProfile(p: SynthProfile): string {
  const r = (x: Range, unit = '') => (x[0] === x[1] ? `${x[0]}${unit}` : `${x[0]}–${x[1]}${unit}`);
  const scanners = p.scanners.map((s) =>
    `${s.name}: ${[...new Set(s.sliceMm)].join('/')} mm slices, noise ${r(s.noiseHu, ' HU')}, bias ${r(s.biasHu, ' HU')}, tilt ${r(s.tiltDeg, '°')}, ` +
    `${s.storage.join('/')}, ${s.orientation.join('/')}, lesion rate ${s.lesionRate}`).join('; ');
  return `${p.name} — ${scanners}; pose ±${p.pose.shiftMm} mm x/y, table z ${r(p.pose.tableZMm, ' mm')}, rotation ±${p.pose.rotationDeg}°; ` +
    `lesions ${r(p.lesion.dropHu, ' HU')}, region rate ${p.lesion.regionRate}`;
}
