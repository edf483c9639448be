import { multiplyAffines } from '../nifti/affine.js';
import type { NiftiVolume } from '../nifti/volume.js';
import { GAUSSIAN_TABLE, GAUSSIAN_TABLE_BITS, mulberry32, randomInt, uniform, type Random } from './prng.js';
import { REGION_NAMES } from './regions.js';
import { headHu, type HeadParams } from './synth-anatomy.js';

export type SynthVolumeOptions = {
  /** In-plane matrix (default 512); pixels grow for smaller matrices so the field of view stays 220–270 mm. */
  matrix?: number;
  /** Slice count; default random 28–36. */
  slices?: number;
  /** Probability that a volume has any ischaemic change (default 0.85). */
  lesionProbability?: number;
  /** Probability of each region being affected in a lesioned hemisphere (default 0.3). */
  regionProbability?: number;
};

export type SynthVolume = {
  volume: Pick<NiftiVolume, 'dims' | 'pixdim' | 'hu' | 'affine' | 'description'>;
  hemisphere: 'L' | 'R';
  labels: Uint8Array;
};

/** Outside the reconstruction circle CT scanners write padding; stored as raw 0 with scl_inter −1024. */
export const PADDING_HU = -1024;
const SLICE_MM = 5;
/** The head model is evaluated once per BLOCK×BLOCK voxels (≈2 mm) and noise is added per voxel. */
const BLOCK = 4;
const HEAD_CENTRE = [0, -17, 12] as const;

/** One synthetic non-contrast head CT, fully determined by `seed`. Pure. */
export function synthVolume(seed: number, options: SynthVolumeOptions = {}): SynthVolume {
  // The draws happen in this order; changing it changes every volume of every seed.
  const random = mulberry32(seed);
  const matrix = options.matrix ?? 512;
  const nz = options.slices ?? randomInt(random, 28, 36);
  const pixel = (uniform(random, 0.43, 0.53) * 512) / matrix;
  const { hemisphere, labels, head } = drawHead(random, options);
  const affine = drawAffine(random, matrix, nz, pixel);
  const sigma = uniform(random, 3, 5);
  const voxelToMni = multiplyAffines(drawWorldToMni(random), affine);
  const hu = renderVoxels({ head, voxelToMni, matrix, nz, sigma, seed });
  return {
    volume: { dims: [matrix, matrix, nz], pixdim: [pixel, pixel, SLICE_MM], hu, affine, description: 'fedgit synthetic NCCT' },
    hemisphere,
    labels,
  };
}

/**
 * World → MNI: the head sits at its MNI place, scaled about its centre and shifted a little
 * in y and z. Its midsagittal plane stays at world x = 0, as after the rigid registration a real
 * pipeline does first: the model compares each hemisphere with the mirrored other one, and a
 * midline off by a few mm makes boundary differences far larger than a 2–6 HU lesion. (The x
 * draw is still made so every other parameter of a seed stays as it was.)
 */
function drawWorldToMni(random: Random): number[] {
  const scale = uniform(random, 0.95, 1.05);
  uniform(random, -3, 3);
  const shift = [0, uniform(random, -3, 3), uniform(random, -3, 3)];
  return [
    1 / scale, 0, 0, HEAD_CENTRE[0] - (HEAD_CENTRE[0] + shift[0]!) / scale,
    0, 1 / scale, 0, HEAD_CENTRE[1] - (HEAD_CENTRE[1] + shift[1]!) / scale,
    0, 0, 1 / scale, HEAD_CENTRE[2] - (HEAD_CENTRE[2] + shift[2]!) / scale,
    0, 0, 0, 1,
  ];
}

/** What the voxels are made from: the head, where each voxel lies in MNI space, and the noise. */
type Scan = { readonly head: HeadParams; readonly voxelToMni: readonly number[]; readonly matrix: number; readonly nz: number; readonly sigma: number; readonly seed: number };

/** The image: the head model per block, noise per voxel, padding outside the reconstruction circle. */
function renderVoxels(scan: Scan): Float32Array {
  const { matrix, nz } = scan;
  const hu = new Float32Array(matrix * matrix * nz);
  const blocks = Math.ceil(matrix / BLOCK);
  const base = new Float32Array(blocks * blocks);
  // The noise is its own xorshift stream, so the per-voxel draws do not move the seed's other draws.
  let noiseState = (scan.seed ^ 0x9e3779b9) >>> 0 || 1;
  for (let k = 0; k < nz; k++) {
    sampleHeadBlocks(scan, k, blocks, base);
    noiseState = fillNoisySlice(scan, k, blocks, base, hu, noiseState);
  }
  return hu;
}

/** The head model at the centre of each BLOCK×BLOCK block of slice k, into `base`. */
function sampleHeadBlocks(scan: Scan, k: number, blocks: number, base: Float32Array): void {
  const m = scan.voxelToMni;
  for (let b = 0; b < blocks; b++) {
    for (let a = 0; a < blocks; a++) {
      const i = a * BLOCK + (BLOCK - 1) / 2, j = b * BLOCK + (BLOCK - 1) / 2;
      base[b * blocks + a] = headHu(scan.head,
        m[0]! * i + m[1]! * j + m[2]! * k + m[3]!,
        m[4]! * i + m[5]! * j + m[6]! * k + m[7]!,
        m[8]! * i + m[9]! * j + m[10]! * k + m[11]!);
    }
  }
}

/** Slice k of `hu`: its block's value plus noise inside the circle, padding outside. Returns the noise state after it. */
function fillNoisySlice(scan: Scan, k: number, blocks: number, base: Float32Array, hu: Float32Array, noiseState: number): number {
  const { matrix, sigma } = scan;
  const centre = (matrix - 1) / 2;
  const fovRadius2 = (matrix / 2) ** 2;
  const tableShift = 32 - GAUSSIAN_TABLE_BITS;
  for (let j = 0; j < matrix; j++) {
    const row = (k * matrix + j) * matrix;
    const halfChord = Math.sqrt(Math.max(0, fovRadius2 - (j - centre) ** 2));
    const first = Math.max(0, Math.ceil(centre - halfChord)), last = Math.min(matrix - 1, Math.floor(centre + halfChord));
    hu.fill(PADDING_HU, row, row + first);
    hu.fill(PADDING_HU, row + last + 1, row + matrix);
    const baseRow = ((j / BLOCK) | 0) * blocks;
    for (let i = first; i <= last; i++) {
      noiseState ^= noiseState << 13; noiseState ^= noiseState >>> 17; noiseState ^= noiseState << 5;
      hu[row + i] = base[baseRow + ((i / BLOCK) | 0)]! + sigma * GAUSSIAN_TABLE[noiseState >>> tableShift]!;
    }
  }
  return noiseState;
}

function drawHead(random: Random, options: SynthVolumeOptions): { hemisphere: 'L' | 'R'; labels: Uint8Array; head: HeadParams } {
  const hemisphere = random() < 0.5 ? 'L' : 'R';
  const labels = new Uint8Array(REGION_NAMES.length);
  if (random() < (options.lesionProbability ?? 0.85)) {
    for (let r = 0; r < labels.length; r++) labels[r] = random() < (options.regionProbability ?? 0.3) ? 1 : 0;
    if (labels.every((l) => l === 0)) labels[randomInt(random, 0, labels.length - 1)] = 1;
  }
  const greyHu = uniform(random, 38, 43);
  const head: HeadParams = {
    greyHu,
    whiteHu: greyHu - uniform(random, 12, 17),
    csfHu: uniform(random, 3, 12),
    boneHu: uniform(random, 1000, 1600),
    scalpHu: uniform(random, 30, 60),
    hemisphere,
    dropHu: Array.from(labels, (l) => (l ? uniform(random, 2, 6) : 0)),
  };
  return { hemisphere, labels, head };
}

/**
 * Voxel → world: pixel spacing with random in-plane flips (as different
 * converters store them), a rotation of a few degrees, centred near the head.
 */
function drawAffine(random: Random, matrix: number, nz: number, pixel: number): number[] {
  const deg = Math.PI / 180;
  const [ax, ay, az] = [uniform(random, -4, 4) * deg, uniform(random, -4, 4) * deg, uniform(random, -4, 4) * deg];
  const rx = [1, 0, 0, 0, 0, Math.cos(ax), -Math.sin(ax), 0, 0, Math.sin(ax), Math.cos(ax), 0, 0, 0, 0, 1];
  const ry = [Math.cos(ay), 0, Math.sin(ay), 0, 0, 1, 0, 0, -Math.sin(ay), 0, Math.cos(ay), 0, 0, 0, 0, 1];
  const rz = [Math.cos(az), -Math.sin(az), 0, 0, Math.sin(az), Math.cos(az), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const flipX = random() < 0.5 ? -1 : 1, flipY = random() < 0.5 ? -1 : 1;
  const zooms = [pixel * flipX, 0, 0, 0, 0, pixel * flipY, 0, 0, 0, 0, SLICE_MM, 0, 0, 0, 0, 1];
  const linear = multiplyAffines(multiplyAffines(multiplyAffines(rz, ry), rx), zooms);
  // Place the centre voxel at the head centre plus a few mm.
  const c = [(matrix - 1) / 2, (matrix - 1) / 2, (nz - 1) / 2];
  const target = [HEAD_CENTRE[0] + uniform(random, -5, 5), HEAD_CENTRE[1] + uniform(random, -5, 5), HEAD_CENTRE[2] + uniform(random, -5, 5)];
  for (let r = 0; r < 3; r++) {
    linear[r * 4 + 3] = target[r]! - (linear[r * 4]! * c[0]! + linear[r * 4 + 1]! * c[1]! + linear[r * 4 + 2]! * c[2]!);
  }
  return linear;
}
