import { availableParallelism } from 'node:os';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DataInvalid } from '../../operator/errors.js';
import { readNifti } from '../nifti/read-nifti.js';
import { DEFAULT_GRID, type Grid } from '../preprocess/grid.js';
import { preprocess } from '../preprocess/preprocess.js';
import { readLabelsCsv } from './labels-csv.js';

export type Sample = {
  /** The volume's file name. */
  id: string;
  /** Model input [D, H, W/2, 2], channels-last (MODEL.md). */
  input: Float32Array;
  labels: Uint8Array;
  hemisphere: 'L' | 'R';
};

export type Cohort = { folder: string; csv: string; grid: Grid; count: number; samples: Sample[] };

export type LoadCohortOptions = {
  /** Labels CSV; default `<folder>/labels.csv`. */
  csv?: string;
  grid?: Grid;
  /** Called after each volume is read and preprocessed. */
  onProgress?: (done: number, total: number, id: string) => void;
  /** Volumes in flight at once (default: available cores, at most 4); only the grids are kept. */
  concurrency?: number;
};

export const isNiftiFile = (name: string): boolean => /\.nii(\.gz)?$/i.test(name);

/** Reads every volume named in the labels CSV and preprocesses it; CSV and folder must match one to one. */
export async function loadCohort(folder: string, options: LoadCohortOptions = {}): Promise<Cohort> {
  const csv = options.csv ?? join(folder, 'labels.csv');
  const grid = options.grid ?? DEFAULT_GRID;
  const rows = await readLabelsCsv(csv);
  const volumes = new Set((await readdir(folder)).filter(isNiftiFile));

  for (const row of rows) {
    if (!volumes.has(row.file)) {
      throw new DataInvalid(`${csv}:${row.line}: no volume ${row.file} in ${folder}`, { file: csv, line: row.line, volume: row.file });
    }
  }
  const labelled = new Set(rows.map((r) => r.file));
  const unlabelled = [...volumes].filter((v) => !labelled.has(v)).sort();
  if (unlabelled.length > 0) {
    throw new DataInvalid(`${join(folder, unlabelled[0]!)}: volume has no row in ${csv}` + (unlabelled.length > 1 ? ` (and ${unlabelled.length - 1} more)` : ''),
      { file: join(folder, unlabelled[0]!), csv, unlabelled });
  }

  const samples = new Array<Sample>(rows.length);
  let next = 0, done = 0;
  const worker = async (): Promise<void> => {
    while (next < rows.length) {
      const n = next++;
      const row = rows[n]!;
      const volume = await readNifti(join(folder, row.file));
      samples[n] = { id: row.file, input: preprocess(volume, row.hemisphere, grid), labels: row.labels, hemisphere: row.hemisphere };
      options.onProgress?.(++done, rows.length, row.file);
    }
  };
  const concurrency = Math.max(1, options.concurrency ?? Math.min(4, availableParallelism()));
  await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  return { folder, csv, grid, count: samples.length, samples };
}
