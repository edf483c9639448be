/**
 * One synthetic non-contrast head CT as a scanner stores it (DESIGN §9): the
 * MNI head model (synth-anatomy.ts) posed anywhere near the table's isocentre
 * (shift, table offset in z, rotation, size), scanned in axial slices of a
 * site's thickness with its gantry tilt, reconstructed in a circular field of
 * view, stored in one of the RAS/LPS/LAS-style axis orders and storage types,
 * with the site's noise and a weak smooth bias field. Fully determined by
 * the seed and the profile. Pure.
 *
 * Geometry (all 4×4 row-major):
 *   mniToWorld  = T(head position) · R(rotation) · scale · T(−head centre)
 *   canonical   = scanner voxel (i → +x, j → +y tilted by the gantry, k → +z along the table) → world;
 *                 with tilt t the j column is p·(0, cos t, sin t) and the k column (0, 0, slice),
 *                 the sheared affine of an untilt-corrected tilted acquisition
 *   voxelToWorld = canonical · F, F the axis order and flips of the stored array
 * A voxel's value is the head at worldToMni · voxelToWorld · (i, j, k).
 */
import { multiplyAffines } from '../nifti/affine.js';
import type { RenderOptions } from '../nifti/render-nifti.js';
import { GAUSSIAN_TABLE, GAUSSIAN_TABLE_BITS, mulberry32, randomInt, uniform, type Random } from './prng.js';
import { REGION_NAMES } from './regions.js';
import { REGION_ELLIPSOIDS, headHu, type HeadParams, type LesionBlob } from './synth-anatomy.js';
import { STORAGE_OPTIONS, type Range, type SynthProfile, type SynthScanner, type SynthStorage } from './synth-settings.js';

/** The MNI point the pose moves: the centre of the brain model. */
export const HEAD_CENTRE_MNI = [0, -17, 12] as const;
/** Outside the reconstruction circle: −1024 HU (raw 0 in uint16 with scl_inter −1024). */
export const SCANNER_PADDING_HU = -1024;
/** The head model is evaluated about every this many mm in-plane; noise is per voxel. */
const MODEL_STEP_MM = 2;
/** Slices at least this thick average two samples of the head (partial volume). */
const PARTIAL_VOLUME_MM = 4;

export type ScannerVolumeOptions = {
  readonly profile: SynthProfile;
  /** In-plane matrix (default 256); the field of view is 230–270 mm whatever the matrix. */
  readonly matrix?: number;
};

/** What was drawn for one volume: enough to check geometry and labels against the image. */
export type ScannerTruth = {
  readonly scanner: string;
  readonly sliceMm: number;
  readonly tiltDeg: number;
  readonly orientation: string;
  readonly storage: SynthStorage;
  readonly noiseHu: number;
  readonly biasHu: number;
  readonly scale: number;
  /** Rotation about x, y, z (applied z · y · x), degrees. */
  readonly rotationDeg: readonly [number, number, number];
  /** World position of the head centre (HEAD_CENTRE_MNI), mm. */
  readonly headCentreWorld: readonly [number, number, number];
  readonly mniToWorld: readonly number[];
  readonly head: HeadParams;
};

export type ScannerVolume = {
  readonly volume: { dims: [number, number, number]; pixdim: [number, number, number]; hu: Float32Array; affine: number[]; description: string };
  readonly hemisphere: 'L' | 'R';
  readonly labels: Uint8Array;
  readonly storage: RenderOptions;
  readonly truth: ScannerTruth;
};

const DEG = Math.PI / 180;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.min(items.length - 1, Math.floor(random() * items.length))]!;
const within = (random: Random, r: Range): number => uniform(random, r[0], r[1]);

export function rotationMatrix(axDeg: number, ayDeg: number, azDeg: number): number[] {
  const [ax, ay, az] = [axDeg * DEG, ayDeg * DEG, azDeg * DEG];
  const rx = [1, 0, 0, 0, 0, Math.cos(ax), -Math.sin(ax), 0, 0, Math.sin(ax), Math.cos(ax), 0, 0, 0, 0, 1];
  const ry = [Math.cos(ay), 0, Math.sin(ay), 0, 0, 1, 0, 0, -Math.sin(ay), 0, Math.cos(ay), 0, 0, 0, 0, 1];
  const rz = [Math.cos(az), -Math.sin(az), 0, 0, Math.sin(az), Math.cos(az), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  return multiplyAffines(multiplyAffines(rz, ry), rx);
}

const translation = (t: readonly number[]): number[] => [1, 0, 0, t[0]!, 0, 1, 0, t[1]!, 0, 0, 1, t[2]!, 0, 0, 0, 1];
const scaling = (s: number): number[] => [s, 0, 0, 0, 0, s, 0, 0, 0, 0, s, 0, 0, 0, 0, 1];

/** MNI → world of a posed head, and its exact inverse. */
export function poseMatrices(rotationDeg: readonly [number, number, number], scale: number, headCentreWorld: readonly number[]): { mniToWorld: number[]; worldToMni: number[] } {
  const r = rotationMatrix(...rotationDeg);
  const c = HEAD_CENTRE_MNI;
  const mniToWorld = multiplyAffines(multiplyAffines(multiplyAffines(translation(headCentreWorld), r), scaling(scale)), translation([-c[0], -c[1], -c[2]]));
  const rT = [r[0]!, r[4]!, r[8]!, 0, r[1]!, r[5]!, r[9]!, 0, r[2]!, r[6]!, r[10]!, 0, 0, 0, 0, 1];
  const worldToMni = multiplyAffines(multiplyAffines(multiplyAffines(translation(c), scaling(1 / scale)), rT), translation(headCentreWorld.map((v) => -v)));
  return { mniToWorld, worldToMni };
}

/**
 * Stored index → canonical index (i → R, j → A, k → S) for an orientation code such as LPS:
 * the letter of each stored axis says where it points; L, P and I run the canonical axis backwards.
 */
export function orientationMatrix(code: string, dims: readonly [number, number, number]): number[] {
  const m = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  [...code].forEach((letter, stored) => {
    const canonical = 'RL'.includes(letter) ? 0 : 'AP'.includes(letter) ? 1 : 2;
    const flip = 'LPI'.includes(letter);
    m[canonical * 4 + stored] = flip ? -1 : 1;
    m[canonical * 4 + 3] = flip ? dims[canonical]! - 1 : 0;
  });
  return m;
}

function drawLesions(random: Random, profile: SynthProfile, labels: Uint8Array): { dropHu: number[]; lesions: (LesionBlob | undefined)[] } {
  const dropHu: number[] = [];
  const lesions: (LesionBlob | undefined)[] = [];
  labels.forEach((label, r) => {
    if (!label) {
      dropHu.push(0);
      lesions.push(undefined);
      return;
    }
    const e = REGION_ELLIPSOIDS[r]!;
    const extent = within(random, profile.lesion.extent);
    dropHu.push(within(random, profile.lesion.dropHu));
    lesions.push({
      cx: e.cx + uniform(random, -0.4, 0.4) * e.ax, cy: e.cy + uniform(random, -0.4, 0.4) * e.ay, cz: e.cz + uniform(random, -0.4, 0.4) * e.az,
      ax: extent * e.ax, ay: extent * e.ay, az: extent * e.az,
      borderMm: within(random, profile.lesion.borderMm),
    });
  });
  return { dropHu, lesions };
}

/** One volume in scanner space. Pure: the same seed and profile give the same values. */
export function synthScannerVolume(seed: number, options: ScannerVolumeOptions): ScannerVolume {
  // The draws happen in this order (site, labels, head, pose, acquisition); changing it changes every volume of every seed.
  const { profile } = options;
  const random = mulberry32(seed);
  const matrix = options.matrix ?? 256;
  const scanner = pick(random, profile.scanners);
  const { hemisphere, labels } = drawLabels(random, profile, scanner.lesionRate);
  const head = drawHead(random, profile, hemisphere, labels);
  const pose = drawPose(random, profile);
  const { mniToWorld, worldToMni } = poseMatrices(pose.rotationDeg, pose.scale, pose.headCentreWorld);
  const acquisition = drawAcquisition(random, scanner, profile, matrix, pose.headCentreWorld[2]);
  const { dims, affine } = scannerAffine(acquisition, matrix);
  const hu = renderVoxels({ head, acquisition, dims, voxelToMni: multiplyAffines(worldToMni, affine), seed });
  const { sliceMm, tiltDeg, orientation, storage, noiseHu, biasHu, pixel } = acquisition;
  return {
    volume: { dims, pixdim: [pixel, pixel, sliceMm], hu, affine, description: 'fedgit synthetic NCCT' },
    hemisphere,
    labels,
    storage: STORAGE_OPTIONS[storage],
    truth: { scanner: scanner.name, sliceMm, tiltDeg, orientation, storage, noiseHu, biasHu, scale: pose.scale, rotationDeg: pose.rotationDeg, headCentreWorld: pose.headCentreWorld, mniToWorld, head },
  };
}

/** The symptomatic side, and which regions are affected: at least one when the volume has a lesion at all. */
function drawLabels(random: Random, profile: SynthProfile, lesionRate: number): { hemisphere: 'L' | 'R'; labels: Uint8Array } {
  const hemisphere: 'L' | 'R' = random() < 0.5 ? 'L' : 'R';
  const labels = new Uint8Array(REGION_NAMES.length);
  if (random() < lesionRate) {
    for (let r = 0; r < labels.length; r++) labels[r] = random() < profile.lesion.regionRate ? 1 : 0;
    if (labels.every((l) => l === 0)) labels[randomInt(random, 0, labels.length - 1)] = 1;
  }
  return { hemisphere, labels };
}

/** Tissue densities, and a lesion in each affected region. */
function drawHead(random: Random, profile: SynthProfile, hemisphere: 'L' | 'R', labels: Uint8Array): HeadParams {
  const greyHu = uniform(random, 38, 43);
  const { dropHu, lesions } = drawLesions(random, profile, labels);
  return {
    greyHu, whiteHu: greyHu - uniform(random, 12, 17), csfHu: uniform(random, 3, 12), boneHu: uniform(random, 1000, 1600), scalpHu: uniform(random, 30, 60),
    hemisphere, dropHu, lesions,
  };
}

type Pose = { readonly rotationDeg: [number, number, number]; readonly scale: number; readonly headCentreWorld: [number, number, number] };

/** Where the head lies on the table: rotation, size, and the world position of its centre. */
function drawPose(random: Random, profile: SynthProfile): Pose {
  const { shiftMm, rotationDeg: maxDeg } = profile.pose;
  const rotationDeg: [number, number, number] = [uniform(random, -maxDeg, maxDeg), uniform(random, -maxDeg, maxDeg), uniform(random, -maxDeg, maxDeg)];
  const scale = within(random, profile.pose.scale);
  const headCentreWorld: [number, number, number] = [uniform(random, -shiftMm, shiftMm), uniform(random, -shiftMm, shiftMm), within(random, profile.pose.tableZMm)];
  return { rotationDeg, scale, headCentreWorld };
}

type Acquisition = {
  readonly sliceMm: number; readonly tiltDeg: number; readonly orientation: string; readonly storage: SynthStorage;
  readonly noiseHu: number; readonly biasHu: number; readonly biasAngle: number;
  readonly pixel: number; readonly nz: number; readonly fovCentre: readonly number[];
};

/** How the scanner took and stored the volume; the field of view is centred near the head (`headZ`). */
function drawAcquisition(random: Random, scanner: SynthScanner, profile: SynthProfile, matrix: number, headZ: number): Acquisition {
  const sliceMm = pick(random, scanner.sliceMm);
  const tiltDeg = within(random, scanner.tiltDeg);
  const orientation = pick(random, scanner.orientation);
  const storage = pick(random, scanner.storage);
  const noiseHu = within(random, scanner.noiseHu);
  const biasHu = within(random, scanner.biasHu);
  const biasAngle = uniform(random, 0, 2 * Math.PI);
  const pixel = uniform(random, 230, 270) / matrix;
  const nz = Math.max(1, Math.round(within(random, profile.coverageMm) / sliceMm));
  const fovCentre = [uniform(random, -5, 5), uniform(random, -5, 5), headZ + uniform(random, -10, 10)];
  return { sliceMm, tiltDeg, orientation, storage, noiseHu, biasHu, biasAngle, pixel, nz, fovCentre };
}

/** The centre voxel of the array: where the field of view is centred. */
const centreVoxel = (dims: readonly [number, number, number]) => [(dims[0] - 1) / 2, (dims[1] - 1) / 2, (dims[2] - 1) / 2];

/** Stored voxel → world: the tilted canonical affine centred on the field of view, times the stored axis order. */
function scannerAffine(acquisition: Acquisition, matrix: number): { dims: [number, number, number]; affine: number[] } {
  const { pixel, sliceMm, nz, fovCentre } = acquisition;
  const t = acquisition.tiltDeg * DEG;
  const canonical = [pixel, 0, 0, 0, 0, pixel * Math.cos(t), 0, 0, 0, pixel * Math.sin(t), sliceMm, 0, 0, 0, 0, 1];
  const dims: [number, number, number] = [matrix, matrix, nz];
  const c = centreVoxel(dims);
  for (let r = 0; r < 3; r++) canonical[r * 4 + 3] = fovCentre[r]! - (canonical[r * 4]! * c[0]! + canonical[r * 4 + 1]! * c[1]! + canonical[r * 4 + 2]! * c[2]!);
  return { dims, affine: multiplyAffines(canonical, orientationMatrix(acquisition.orientation, dims)) };
}

/** What the voxels are made from: the head, where each stored voxel lies in MNI space, and the acquisition. */
type Scan = { readonly head: HeadParams; readonly acquisition: Acquisition; readonly dims: [number, number, number]; readonly voxelToMni: readonly number[]; readonly seed: number };

/** The image: the head model (plus bias) once per block of about 2 mm, noise per voxel, padding outside the circle. */
function renderVoxels(scan: Scan): Float32Array {
  const [matrix, , nz] = scan.dims;
  const block = Math.max(1, Math.round(MODEL_STEP_MM / scan.acquisition.pixel));
  const blocks = Math.ceil(matrix / block);
  const base = new Float32Array(blocks * blocks);
  const hu = new Float32Array(matrix * matrix * nz);
  // The noise is its own xorshift stream, so the per-voxel draws do not move the seed's other draws.
  let noiseState = (scan.seed ^ 0x9e3779b9) >>> 0 || 1;
  for (let k = 0; k < nz; k++) {
    sampleHeadBlocks(scan, k, block, blocks, base);
    noiseState = fillNoisySlice(scan, k, block, blocks, base, hu, noiseState);
  }
  return hu;
}

/** The head model plus bias at the centre of each block of slice k that reaches the circle, into `base`. */
function sampleHeadBlocks(scan: Scan, k: number, block: number, blocks: number, base: Float32Array): void {
  const { head, acquisition, dims, voxelToMni: m } = scan;
  const [matrix, , nz] = dims;
  const c = centreVoxel(dims);
  const blockReach2 = (matrix / 2 + block) ** 2;
  const samples = acquisition.sliceMm >= PARTIAL_VOLUME_MM ? [-0.25, 0.25] : [0];
  const [gx, gy] = [Math.cos(acquisition.biasAngle), Math.sin(acquisition.biasAngle)];
  const w = (k - c[2]!) / Math.max(1, nz / 2);
  for (let b = 0; b < blocks; b++) {
    for (let a = 0; a < blocks; a++) {
      const i = Math.min(a * block + (block - 1) / 2, matrix - 1), j = Math.min(b * block + (block - 1) / 2, matrix - 1);
      const u = (i - c[0]!) / (matrix / 2), v = (j - c[1]!) / (matrix / 2);
      if ((i - c[0]!) ** 2 + (j - c[1]!) ** 2 > blockReach2) continue;
      let sum = 0;
      for (const dk of samples) {
        const kk = k + dk;
        sum += headHu(head,
          m[0]! * i + m[1]! * j + m[2]! * kk + m[3]!,
          m[4]! * i + m[5]! * j + m[6]! * kk + m[7]!,
          m[8]! * i + m[9]! * j + m[10]! * kk + m[11]!);
      }
      // Weak and smooth: a linear gradient across the field, cupping (centre darker), a little along z.
      const bias = acquisition.biasHu * (0.5 * (gx * u + gy * v) - 0.4 * (1 - u * u - v * v) + 0.1 * w);
      base[b * blocks + a] = sum / samples.length + bias;
    }
  }
}

/** Slice k of `hu`: its block's value plus noise inside the circle, padding outside. Returns the noise state after it. */
function fillNoisySlice(scan: Scan, k: number, block: number, blocks: number, base: Float32Array, hu: Float32Array, noiseState: number): number {
  const [matrix] = scan.dims;
  const sigma = scan.acquisition.noiseHu;
  const c = centreVoxel(scan.dims);
  const fovRadius2 = (matrix / 2) ** 2;
  const tableShift = 32 - GAUSSIAN_TABLE_BITS;
  for (let j = 0; j < matrix; j++) {
    const row = (k * matrix + j) * matrix;
    const halfChord = Math.sqrt(Math.max(0, fovRadius2 - (j - c[1]!) ** 2));
    const first = Math.max(0, Math.ceil(c[0]! - halfChord)), last = Math.min(matrix - 1, Math.floor(c[0]! + halfChord));
    hu.fill(SCANNER_PADDING_HU, row, row + Math.min(first, matrix));
    if (last + 1 < matrix) hu.fill(SCANNER_PADDING_HU, row + last + 1, row + matrix);
    const baseRow = ((j / block) | 0) * blocks;
    for (let i = first; i <= last; i++) {
      noiseState ^= noiseState << 13; noiseState ^= noiseState >>> 17; noiseState ^= noiseState << 5;
      hu[row + i] = base[baseRow + ((i / block) | 0)]! + sigma * GAUSSIAN_TABLE[noiseState >>> tableShift]!;
    }
  }
  return noiseState;
}
