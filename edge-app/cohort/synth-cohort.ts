import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNifti } from '../nifti/read-nifti.js';
import type { RenderOptions } from '../nifti/render-nifti.js';
import { writeLabelsCsv, type LabelRow } from './labels-csv.js';
import { deriveSeed } from './prng.js';
import { synthScannerVolume, type ScannerTruth } from './synth-scanner.js';
import type { SynthProfile } from './synth-settings.js';
import { synthVolume, type SynthVolumeOptions } from './synth-volume.js';

export type SynthCohortOptions = SynthVolumeOptions & {
  outDir: string;
  count: number;
  seed: number;
  /**
   * Scanner-space volumes drawn from this profile (synth-settings.ts), each stored as its scanner
   * stores it. Without one: the aligned generator of synth-volume.ts (head at its MNI place,
   * int16 − 1024), which older tests rely on.
   */
  profile?: SynthProfile;
  onProgress?: (done: number, total: number, id: string) => void;
};

export type SynthCohort = { outDir: string; csv: string; count: number; rows: Omit<LabelRow, 'line'>[] };

/** Storage of the aligned generator: int16 with HU = raw − 1024, like most CT exports. */
export const SYNTH_STORAGE = { datatype: 'int16', sclSlope: 1, sclInter: -1024 } as const;

/**
 * What was drawn for each volume of a profile cohort (scanner, pose, MNI → world matrix, lesions),
 * for checking registration and lesions against the truth. A dot file: loaders ignore it.
 */
export const SYNTH_TRUTH_FILE = '.fedgit-synth-truth.json';

export const synthFileName = (index: number): string => `synth-${String(index).padStart(4, '0')}.nii.gz`;

/**
 * Writes `count` synthetic head CTs and labels.csv into outDir (labels.csv last). The same seed
 * gives identical bytes. Generating volume n+1 overlaps with gzip and write of volume n (zlib runs
 * in the thread pool); at most one write is pending.
 */
export async function synthCohort(options: SynthCohortOptions): Promise<SynthCohort> {
  const { outDir, count, seed, profile } = options;
  await mkdir(outDir, { recursive: true });
  const rows: Omit<LabelRow, 'line'>[] = [];
  const truth: Record<string, Omit<ScannerTruth, 'head'> & { lesions: unknown }> = {};
  let pending: Promise<void> = Promise.resolve();
  for (let n = 0; n < count; n++) {
    const file = synthFileName(n);
    let made: { volume: Parameters<typeof writeNifti>[1]; hemisphere: 'L' | 'R'; labels: Uint8Array; storage: RenderOptions };
    if (profile) {
      const v = synthScannerVolume(deriveSeed(seed, n), { profile, ...(options.matrix !== undefined ? { matrix: options.matrix } : {}) });
      made = v;
      const { head, ...rest } = v.truth;
      truth[file] = { ...rest, lesions: head.lesions?.map((l, r) => (l ? { ...l, dropHu: head.dropHu[r] } : null)) ?? [] };
    } else {
      made = { ...synthVolume(deriveSeed(seed, n), options), storage: SYNTH_STORAGE };
    }
    await pending;
    pending = writeNifti(join(outDir, file), made.volume, made.storage).then(() => options.onProgress?.(n + 1, count, file));
    rows.push({ file, hemisphere: made.hemisphere, labels: made.labels });
  }
  await pending;
  if (profile) await writeFile(join(outDir, SYNTH_TRUTH_FILE), JSON.stringify({ profile, volumes: truth }, null, 1) + '\n');
  const csv = join(outDir, 'labels.csv');
  await writeLabelsCsv(csv, rows);
  return { outDir, csv, count, rows };
}
