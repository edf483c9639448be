import { availableParallelism } from 'node:os';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DataInvalid } from '../../sdk/index.js';
import { isDicomSeriesFolder } from '../intake/dicom.js';
import { isNiftiName, readScan } from '../intake/resolve-volume.js';
import { DEFAULT_GRID, type Grid } from '../preprocess/grid.js';
import { preprocess } from '../preprocess/preprocess.js';
import { readLabelsCsv } from './labels-csv.js';

export type Sample = {
  /** The volume's file or DICOM series folder name, as in labels.csv. */
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
  /** Where DICOM series are converted to; default `<folder>/.fedgit-cache/dicom`. */
  cacheDir?: string;
};

export const isNiftiFile = isNiftiName;

/**
 * Reads every volume named in the labels CSV (a NIfTI file or a DICOM series folder), checks that a
 * head is in its field of view, and preprocesses it. CSV and folder must match one to one: every
 * row names a file or sub-folder, every NIfTI file and DICOM series sub-folder has a row (dot
 * entries such as the `.fedgit-cache` conversion cache are not volumes).
 */
export async function loadCohort(folder: string, options: LoadCohortOptions = {}): Promise<Cohort> {
  const csv = options.csv ?? join(folder, 'labels.csv');
  const grid = options.grid ?? DEFAULT_GRID;
  const rows = await readLabelsCsv(csv);
  const entries = (await readdir(folder, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  const niftiFiles = entries.filter((e) => !e.isDirectory() && isNiftiName(e.name)).map((e) => e.name);
  const subfolders = entries.filter((e) => e.isDirectory()).map((e) => e.name);

  const present = new Set([...niftiFiles, ...subfolders]);
  for (const row of rows) {
    if (!present.has(row.file)) {
      throw new DataInvalid(`${csv}:${row.line}: no volume ${row.file} in ${folder}`, { file: csv, line: row.line, volume: row.file });
    }
  }
  const labelled = new Set(rows.map((r) => r.file));
  const unlabelledSeries: string[] = [];
  for (const name of subfolders) {
    if (!labelled.has(name) && await isDicomSeriesFolder(join(folder, name))) unlabelledSeries.push(name);
  }
  const unlabelled = [...niftiFiles.filter((v) => !labelled.has(v)), ...unlabelledSeries].sort();
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
      const { volume } = await readScan(folder, row.file, options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {});
      samples[n] = { id: row.file, input: preprocess(volume, row.hemisphere, grid), labels: row.labels, hemisphere: row.hemisphere };
      options.onProgress?.(++done, rows.length, row.file);
    }
  };
  const concurrency = Math.max(1, options.concurrency ?? Math.min(4, availableParallelism()));
  await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  return { folder, csv, grid, count: samples.length, samples };
}
