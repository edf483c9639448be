import { readFile, writeFile } from 'node:fs/promises';
import { DataInvalid } from '../../sdk/index.js';
import { REGION_NAMES } from './regions.js';

export type LabelRow = {
  /** A NIfTI file (.nii, .nii.gz) or a folder holding one DICOM series, directly in the cohort folder. */
  file: string;
  hemisphere: 'L' | 'R';
  /** 0/1 per region in REGION_NAMES order. */
  labels: Uint8Array;
  /** 1-based line in the CSV (0 when not read from a file). */
  line: number;
};

export const LABELS_HEADER = ['file', 'hemisphere', ...REGION_NAMES] as const;

/** Parses the labels CSV (columns in any order, extra columns ignored). Errors name the file, line and field. */
export function parseLabelsCsv(text: string, file: string): LabelRow[] {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((l) => l.trim() !== '');
  if (headerIndex < 0) throw new DataInvalid(`${file}: empty labels CSV`, { file });
  const header = splitRow(lines[headerIndex]!);
  const missing = LABELS_HEADER.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new DataInvalid(`${file}:${headerIndex + 1}: missing column(s) ${missing.join(', ')}`, { file, line: headerIndex + 1, missing });
  }
  const column = (name: string): number => header.indexOf(name);

  const rows: LabelRow[] = [];
  const seen = new Map<string, number>();
  for (let n = headerIndex + 1; n < lines.length; n++) {
    if (lines[n]!.trim() === '') continue;
    const line = n + 1;
    const cells = splitRow(lines[n]!);
    const fail = (field: string, message: string): never => {
      throw new DataInvalid(`${file}:${line}: ${message}`, { file, line, field });
    };
    if (cells.length < header.length) fail('row', `${cells.length} cells, the header has ${header.length}`);
    // A trailing slash marks a DICOM series folder; the sample id is the bare name.
    const volume = cells[column('file')]!.replace(/[/\\]+$/, '');
    if (volume === '') fail('file', 'empty file name');
    if (/[/\\]/.test(volume) || volume.startsWith('.')) {
      fail('file', `${JSON.stringify(volume)} must name a NIfTI file or a DICOM series folder directly in the data folder`);
    }
    const earlier = seen.get(volume);
    if (earlier !== undefined) fail('file', `duplicate row for ${volume} (first on line ${earlier})`);
    seen.set(volume, line);
    const hemisphere = cells[column('hemisphere')]!;
    if (hemisphere !== 'L' && hemisphere !== 'R') fail('hemisphere', `hemisphere ${JSON.stringify(hemisphere)} is not L or R`);
    const labels = new Uint8Array(REGION_NAMES.length);
    REGION_NAMES.forEach((region, r) => {
      const cell = cells[column(region)]!;
      if (cell !== '0' && cell !== '1') fail(region, `${region} = ${JSON.stringify(cell)} is not 0 or 1`);
      labels[r] = cell === '1' ? 1 : 0;
    });
    rows.push({ file: volume, hemisphere: hemisphere as 'L' | 'R', labels, line });
  }
  return rows;
}

export function renderLabelsCsv(rows: readonly Omit<LabelRow, 'line'>[]): string {
  const body = rows.map((r) => [r.file, r.hemisphere, ...r.labels].join(','));
  return [LABELS_HEADER.join(','), ...body].join('\n') + '\n';
}

export async function readLabelsCsv(path: string): Promise<LabelRow[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new DataInvalid(`${path}: cannot read labels CSV (${(cause as Error).message})`, { file: path }, { cause });
  }
  return parseLabelsCsv(text, path);
}

export async function writeLabelsCsv(path: string, rows: readonly Omit<LabelRow, 'line'>[]): Promise<void> {
  await writeFile(path, renderLabelsCsv(rows));
}

function splitRow(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
}
