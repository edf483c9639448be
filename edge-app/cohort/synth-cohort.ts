import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNifti } from '../nifti/read-nifti.js';
import { writeLabelsCsv, type LabelRow } from './labels-csv.js';
import { deriveSeed } from './prng.js';
import { synthVolume, type SynthVolumeOptions } from './synth-volume.js';

export type SynthCohortOptions = SynthVolumeOptions & {
  outDir: string;
  count: number;
  seed: number;
  onProgress?: (done: number, total: number, id: string) => void;
};

export type SynthCohort = { outDir: string; csv: string; count: number; rows: Omit<LabelRow, 'line'>[] };

/** Stored as int16 with HU = raw − 1024, like most CT exports. */
export const SYNTH_STORAGE = { datatype: 'int16', sclSlope: 1, sclInter: -1024 } as const;

export const synthFileName = (index: number): string => `synth-${String(index).padStart(4, '0')}.nii.gz`;

/**
 * Writes `count` synthetic head CTs and labels.csv into outDir. The same seed
 * gives identical bytes. Generating volume n+1 overlaps with gzip and write of
 * volume n (zlib runs in the thread pool); at most one write is pending.
 */
export async function synthCohort(options: SynthCohortOptions): Promise<SynthCohort> {
  const { outDir, count, seed } = options;
  await mkdir(outDir, { recursive: true });
  const rows: Omit<LabelRow, 'line'>[] = [];
  let pending: Promise<void> = Promise.resolve();
  for (let n = 0; n < count; n++) {
    const file = synthFileName(n);
    const { volume, hemisphere, labels } = synthVolume(deriveSeed(seed, n), options);
    await pending;
    pending = writeNifti(join(outDir, file), volume, SYNTH_STORAGE).then(() => options.onProgress?.(n + 1, count, file));
    rows.push({ file, hemisphere, labels });
  }
  await pending;
  const csv = join(outDir, 'labels.csv');
  await writeLabelsCsv(csv, rows);
  return { outDir, csv, count, rows };
}
