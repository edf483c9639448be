/**
 * A folder holding one DICOM series (as exported from a PACS) → one NIfTI, converted by Debian's
 * dcm2niix (no DICOM parsing of our own) into a cache folder keyed by the series' files, so a
 * cohort is converted once. Refusals are DataInvalid naming the folder; which outputs are accepted
 * is decided in series-check.ts.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AppFailed, DataInvalid } from '../../sdk/index.js';
import { parseDcm2niixLog, type Dcm2niixLog } from './dcm2niix-log.js';
import { decideConversion } from './series-check.js';
import { HEADER_BYTES, seriesKey, type SeriesFile } from './series-key.js';

export type DicomConversion = {
  /** The series folder. */
  folder: string;
  niftiPath: string;
  sidecarPath: string;
  /** dcm2niix's BIDS sidecar (anonymised). */
  sidecar: Record<string, unknown>;
  /** dcm2niix corrected gantry tilt (its `_Tilt_` output is the one kept). */
  tiltCorrected: boolean;
  /** Taken from the cache, dcm2niix not run. */
  cached: boolean;
};

export type ConvertDicomOptions = {
  /** Where converted series are kept, one sub-folder per series key. */
  cacheDir: string;
  /** Default 120 s; a 300-slice series converts in about a second. */
  timeoutMs?: number;
  /** The dcm2niix executable; default $FEDGIT_DCM2NIIX or `dcm2niix` on PATH. */
  dcm2niix?: string;
};

/**
 * `-v 1` prints each file's position for series-check; `-d 0`: this folder only, its sub-folders
 * would be other series; `-g i`: ignore a user's ~/.dcm2nii.ini; `-z n -b y`: plain .nii and a
 * JSON sidecar; `-ba y`: no patient data in the sidecar.
 */
const DCM2NIIX_ARGS = ['-g', 'i', '-v', '1', '-d', '0', '-z', 'n', '-b', 'y', '-ba', 'y', '-f', 'series_%s', '-w', '2'] as const;
const CACHE_FORMAT = 'fedgit-dicom-cache/1';
const NIFTI = 'series.nii', SIDECAR = 'series.json', RECORD = 'intake.json';

const DICOM_MAGIC_OFFSET = 128;
/** Files looked at to decide whether a folder holds DICOM. */
const SNIFF_FILES = 8;

/** True when the folder directly holds DICOM Part 10 files ("DICM" after the 128-byte preamble). */
export async function isDicomSeriesFolder(dir: string): Promise<boolean> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
  } catch {
    return false;
  }
  for (const name of names.slice(0, SNIFF_FILES)) {
    const magic = await readBytes(join(dir, name), DICOM_MAGIC_OFFSET, 4);
    if (magic.toString('latin1') === 'DICM') return true;
  }
  return false;
}

/** Converts (or finds in the cache) the one series in `folder`. */
export async function convertDicomSeries(folder: string, options: ConvertDicomOptions): Promise<DicomConversion> {
  const files = await listSeriesFiles(folder);
  if (files.length === 0) throw new DataInvalid(`${folder}: no DICOM series found (no files directly in the folder)`, { file: folder, reason: 'no-series' });
  const key = seriesKey(files, [CACHE_FORMAT, ...DCM2NIIX_ARGS].join(' '));
  const entry = join(options.cacheDir, key);
  const cached = await readCacheEntry(folder, entry);
  if (cached) return cached;

  await mkdir(options.cacheDir, { recursive: true });
  const work = await mkdtemp(join(options.cacheDir, `.work-${key}-`));
  try {
    const run = await runDcm2niix(options.dcm2niix ?? process.env.FEDGIT_DCM2NIIX ?? 'dcm2niix', resolve(folder), work, options.timeoutMs ?? 120_000);
    const decision = decideConversion({ exitCode: run.exitCode, log: run.log, outputs: await readdir(work) });
    if (decision.kind === 'refuse') {
      throw new DataInvalid(`${folder}: ${decision.message}`, { file: folder, reason: decision.reason, warnings: run.log.warnings, errors: run.log.errors });
    }
    await rename(join(work, decision.nifti), join(work, `${NIFTI}.keep`));
    await rename(join(work, decision.sidecar), join(work, `${SIDECAR}.keep`));
    for (const name of await readdir(work)) if (!name.endsWith('.keep')) await rm(join(work, name), { force: true });
    await rename(join(work, `${NIFTI}.keep`), join(work, NIFTI));
    await rename(join(work, `${SIDECAR}.keep`), join(work, SIDECAR));
    const record = { format: CACHE_FORMAT, folder: resolve(folder), files: files.length, converter: run.log.version ?? 'dcm2niix', output: decision.nifti, tiltCorrected: decision.tiltCorrected, warnings: run.log.warnings };
    await writeFile(join(work, RECORD), JSON.stringify(record, null, 2) + '\n');
    try {
      await rename(work, entry);
    } catch (e) {
      // Another process converted the same series first: its entry is as good as ours.
      if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const converted = await readCacheEntry(folder, entry);
  if (!converted) throw new Error(`${entry}: cache entry missing right after conversion`);
  return { ...converted, cached: false };
}

async function readCacheEntry(folder: string, entry: string): Promise<DicomConversion | undefined> {
  let record: { tiltCorrected?: unknown };
  let sidecar: Record<string, unknown>;
  try {
    record = JSON.parse(await readFile(join(entry, RECORD), 'utf8')) as { tiltCorrected?: unknown };
    sidecar = JSON.parse(await readFile(join(entry, SIDECAR), 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DataInvalid(`${entry}: unreadable cache entry for ${folder} (${(e as Error).message}); delete it to convert again`, { file: entry }, { cause: e });
  }
  return { folder, niftiPath: join(entry, NIFTI), sidecarPath: join(entry, SIDECAR), sidecar, tiltCorrected: record.tiltCorrected === true, cached: true };
}

async function listSeriesFiles(folder: string): Promise<SeriesFile[]> {
  let entries;
  try {
    entries = await readdir(folder, { withFileTypes: true });
  } catch (cause) {
    throw new DataInvalid(`${folder}: cannot read the DICOM series folder (${(cause as Error).message})`, { file: folder }, { cause });
  }
  const files: SeriesFile[] = [];
  for (const e of entries.filter((x) => x.isFile())) {
    const path = join(folder, e.name);
    const s = await stat(path);
    const head = await readBytes(path, 0, HEADER_BYTES);
    files.push({ name: e.name, size: s.size, mtimeMs: s.mtimeMs, headSha256: createHash('sha256').update(head).digest('hex') });
  }
  return files;
}

async function readBytes(path: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

type Dcm2niixRun = { exitCode: number | null; log: Dcm2niixLog };

/** Runs dcm2niix without a shell; a non-zero exit is a result, a missing executable an error. */
function runDcm2niix(executable: string, folder: string, outDir: string, timeoutMs: number): Promise<Dcm2niixRun> {
  return new Promise((resolvePromise, reject) => {
    execFile(executable, [...DCM2NIIX_ARGS, '-o', outDir, folder], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      const log = parseDcm2niixLog(`${stdout}\n${stderr}`);
      if (!error) return resolvePromise({ exitCode: 0, log });
      const code = (error as NodeJS.ErrnoException).code as unknown;
      if (code === 'ENOENT') {
        return reject(new AppFailed(`${executable} not found: DICOM series need dcm2niix (Debian: apt-get install dcm2niix, or set FEDGIT_DCM2NIIX)`, { tool: 'dcm2niix', executable }, { cause: error }));
      }
      if (typeof code === 'number') return resolvePromise({ exitCode: code, log });
      // Killed (timeout) or output beyond maxBuffer: no usable result.
      resolvePromise({ exitCode: null, log });
    });
  });
}
