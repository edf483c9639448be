/**
 * A synthetic NCCT cohort with settings the default job does not use, to test
 * that aspects-region/v3 generalises (issue 9): heads shifted ±10 mm and
 * rotated ±8°, gantry tilt up to 15° (a sheared affine, as a converter
 * without tilt correction writes it), RAS / LPS / LAS storage, 2.5 or 5 mm
 * slices, int16 / uint16 + scl_inter / float32, 4–6 HU noise, a weak bias
 * field (a left-right gradient plus a radial term), and its own lesion model:
 * 3–8 HU, a blurred ball covering part of the region, on grey and (half) white
 * matter. Only the anatomy (synth-anatomy's healthy head) is shared with the
 * built-in generator.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeLabelsCsv, type LabelRow } from '../../edge-app/cohort/labels-csv.js';
import { mulberry32 } from '../../edge-app/random.js';
import { REGION_ANATOMY, REGION_NAMES } from '../../edge-app/cohort/regions.js';
import { headHu, regionAt, REGION_ELLIPSOIDS, type HeadParams } from '../../edge-app/cohort/synth-anatomy.js';
import { multiplyAffines } from '../../edge-app/nifti/affine.js';
import { writeNifti } from '../../edge-app/nifti/read-nifti.js';
import type { DatatypeName } from '../../edge-app/nifti/volume.js';
import { fnv1a32, gaussian } from '../../edge-app/random.js';
import { poseMatrix } from './registration-copies.js';

export type IndependentOptions = {
  /** In-plane matrix (default 128: ~1.8 mm pixels over a 230 mm field of view). */
  matrix?: number;
  /** Scale of the variability: 1 = the independent cohort. */
  lesionHu?: readonly [number, number];
  noiseHu?: readonly [number, number];
};

type Lesion = { region: number; dropHu: number; centre: [number, number, number]; radiusMm: number };

const HEAD_CENTRE = [0, -17, 12] as const;
const BLUR_MM = 6;

/** One volume: HU in scanner space, its affine, storage, and labels. Pure (seeded). */
export function independentVolume(seed: number, options: IndependentOptions = {}) {
  const random = mulberry32(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * random();
  const matrix = options.matrix ?? 128;
  const hemisphere: 'L' | 'R' = random() < 0.5 ? 'L' : 'R';
  const labels = new Uint8Array(10);
  if (random() < 0.85) {
    for (let r = 0; r < 10; r++) labels[r] = random() < 0.3 ? 1 : 0;
    if (labels.every((l) => l === 0)) labels[Math.floor(random() * 10)] = 1;
  }
  const greyHu = u(35, 44);
  const head: HeadParams = { greyHu, whiteHu: greyHu - u(10, 16), csfHu: u(2, 12), boneHu: u(900, 1700), scalpHu: u(25, 60), hemisphere, dropHu: REGION_NAMES.map(() => 0) };
  const lesionHu = options.lesionHu ?? [3, 8];
  const lesions: Lesion[] = [];
  labels.forEach((l, r) => {
    if (!l) return;
    const e = REGION_ELLIPSOIDS[r]!;
    const sign = hemisphere === 'L' ? 1 : -1;
    const centre: [number, number, number] = [sign * (e.cx + u(-0.4, 0.4) * e.ax), e.cy + u(-0.4, 0.4) * e.ay, e.cz + u(-0.4, 0.4) * e.az];
    lesions.push({ region: r, dropHu: u(lesionHu[0], lesionHu[1]), centre, radiusMm: u(0.6, 1.2) * Math.max(e.ax, e.ay, e.az) });
  });
  const [noiseLo, noiseHi] = options.noiseHu ?? [4, 6];
  const sigma = u(noiseLo, noiseHi);
  const biasX = u(-0.04, 0.04); // HU per mm, left-right
  const biasRadial = u(-3, 3); // HU at 80 mm from the centre

  const sliceMm = random() < 0.5 ? 2.5 : 5;
  const pixel = u(210, 250) / matrix;
  const fovZ = u(120, 150);
  const nz = Math.round(fovZ / sliceMm);
  const tiltDeg = random() < 0.5 ? u(-15, 15) : 0;
  const pose = poseMatrix({ shiftMm: [u(-10, 10), u(-10, 10), u(-10, 10) - 20], rotateDeg: [u(-8, 8), u(-8, 8), u(-8, 8)], about: [...HEAD_CENTRE] });
  const storage = (['RAS', 'LPS', 'LAS'] as const)[Math.floor(random() * 3)]!;
  const datatype = (['int16', 'uint16', 'float32'] as const)[Math.floor(random() * 3)]!;

  // scanner voxel → scanner world (tilted: each slice shifted in y by z·tan(tilt)), centred on the head
  const tan = Math.tan((tiltDeg * Math.PI) / 180);
  const fx = storage === 'RAS' ? 1 : -1, fy = storage === 'LPS' || storage === 'LAS' ? (storage === 'LPS' ? -1 : 1) : 1;
  const c = [(matrix - 1) / 2, (matrix - 1) / 2, (nz - 1) / 2];
  const toWorld = [
    fx * pixel, 0, 0, -fx * pixel * c[0]! + HEAD_CENTRE[0],
    0, fy * pixel, tan * sliceMm, -fy * pixel * c[1]! - tan * sliceMm * c[2]! + HEAD_CENTRE[1],
    0, 0, sliceMm, -sliceMm * c[2]! + HEAD_CENTRE[2] + 10,
    0, 0, 0, 1,
  ];
  // The head sits in scanner world at pose(MNI point): MNI point = pose⁻¹(world).
  const worldToMni = invertRigid(pose);
  const m = multiplyAffines(worldToMni, toWorld);
  const hu = new Float32Array(matrix * matrix * nz);
  const noise = mulberry32(fnv1a32(`noise/${seed}`));
  const sub = sliceMm > 2.5 ? [-0.3, 0, 0.3] : [-0.25, 0.25];
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < matrix; j++) {
      for (let i = 0; i < matrix; i++) {
        let sum = 0;
        for (const dk of sub) {
          const kk = k + dk;
          const x = m[0]! * i + m[1]! * j + m[2]! * kk + m[3]!, y = m[4]! * i + m[5]! * j + m[6]! * kk + m[7]!, z = m[8]! * i + m[9]! * j + m[10]! * kk + m[11]!;
          sum += tissueHu(head, lesions, x, y, z);
        }
        let v = sum / sub.length;
        if (v > -500) {
          const [x, y, z] = [m[0]! * i + m[1]! * j + m[2]! * k + m[3]!, m[4]! * i + m[5]! * j + m[6]! * k + m[7]!, m[8]! * i + m[9]! * j + m[10]! * k + m[11]!];
          const r = Math.hypot(x - HEAD_CENTRE[0], y - HEAD_CENTRE[1], z - HEAD_CENTRE[2]) / 80;
          v += biasX * x + biasRadial * r * r + sigma * gaussian(noise);
        }
        hu[(k * matrix + j) * matrix + i] = v;
      }
    }
  }
  return {
    volume: { dims: [matrix, matrix, nz] as [number, number, number], hu, affine: toWorld, description: `independent ${storage} tilt ${tiltDeg.toFixed(1)}` },
    storage: datatypeOptions(datatype),
    hemisphere,
    labels,
    settings: { storage, datatype, sliceMm, tiltDeg, sigma, biasX, biasRadial },
  };
}

function datatypeOptions(datatype: 'int16' | 'uint16' | 'float32'): { datatype: DatatypeName; sclSlope?: number; sclInter?: number } {
  if (datatype === 'int16') return { datatype: 'int16', sclSlope: 1, sclInter: 0 };
  if (datatype === 'uint16') return { datatype: 'uint16', sclSlope: 1, sclInter: -1024 };
  return { datatype: 'float32' };
}

function tissueHu(head: HeadParams, lesions: readonly Lesion[], x: number, y: number, z: number): number {
  const v = headHu(head, x, y, z);
  if (lesions.length === 0 || v === head.csfHu || v < 0 || v > 100) return v;
  const side = x < 0 ? 'L' : 'R';
  if (side !== head.hemisphere) return v;
  const region = regionAt(-Math.abs(x), y, z);
  let drop = 0;
  for (const l of lesions) {
    if (l.region !== region) continue;
    const d = Math.hypot(x - l.centre[0], y - l.centre[1], z - l.centre[2]);
    const w = Math.max(0, Math.min(1, (l.radiusMm - d) / BLUR_MM + 0.5));
    drop = Math.max(drop, w * l.dropHu * (v === head.greyHu ? 1 : 0.5));
  }
  return v - drop;
}

function invertRigid(m: readonly number[]): number[] {
  const r = [m[0]!, m[4]!, m[8]!, m[1]!, m[5]!, m[9]!, m[2]!, m[6]!, m[10]!]; // transpose
  const t = [m[3]!, m[7]!, m[11]!];
  return [
    r[0]!, r[1]!, r[2]!, -(r[0]! * t[0]! + r[1]! * t[1]! + r[2]! * t[2]!),
    r[3]!, r[4]!, r[5]!, -(r[3]! * t[0]! + r[4]! * t[1]! + r[5]! * t[2]!),
    r[6]!, r[7]!, r[8]!, -(r[6]! * t[0]! + r[7]! * t[1]! + r[8]! * t[2]!),
    0, 0, 0, 1,
  ];
}

/** Writes `count` volumes (`ind-NNNN.nii.gz`) and labels.csv into outDir. */
export async function writeIndependentCohort(outDir: string, count: number, seed: number, options: IndependentOptions = {}): Promise<Omit<LabelRow, 'line'>[]> {
  await mkdir(outDir, { recursive: true });
  const rows: Omit<LabelRow, 'line'>[] = [];
  for (let n = 0; n < count; n++) {
    const v = independentVolume(fnv1a32(`${seed}/${n}`), options);
    const file = `ind-${String(n).padStart(4, '0')}.nii.gz`;
    await writeNifti(join(outDir, file), v.volume, v.storage);
    rows.push({ file, hemisphere: v.hemisphere, labels: v.labels });
  }
  await writeLabelsCsv(join(outDir, 'labels.csv'), rows);
  return rows;
}

/** Region anatomy, re-exported for tests that check lesion placement. */
export { REGION_ANATOMY };
