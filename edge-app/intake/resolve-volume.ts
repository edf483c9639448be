/**
 * A volume named in labels.csv → a NIfTI file on disk: a `.nii`/`.nii.gz` file as it is, a folder
 * holding a DICOM series through dcm2niix into a cache. `readScan` also reads the NIfTI and checks
 * that a head is in its field of view, so nothing is trained or evaluated on an empty grid.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DataInvalid } from '../../sdk/index.js';
import { readNifti } from '../nifti/read-nifti.js';
import type { NiftiVolume } from '../nifti/volume.js';
import { convertDicomSeries } from './dicom.js';
import { requireHead, type HeadMeasure } from './head-check.js';

/** The data folder's own cache; loadCohort's one-to-one check ignores it (and every dot entry). */
export const CACHE_FOLDER = '.fedgit-cache';

export const isNiftiName = (name: string): boolean => /\.nii(\.gz)?$/i.test(name);

export const defaultDicomCacheDir = (dataDir: string): string => join(dataDir, CACHE_FOLDER, 'dicom');

export type ResolveOptions = {
  /** Where DICOM conversions are kept; default `<dataDir>/.fedgit-cache/dicom`. */
  cacheDir?: string;
  /** dcm2niix time limit per series. */
  timeoutMs?: number;
};

export type ResolvedVolume = {
  niftiPath: string;
  source: 'nifti' | 'dicom';
  /** dcm2niix's JSON sidecar, for a DICOM series. */
  sidecar?: Record<string, unknown>;
  /** dcm2niix corrected gantry tilt. */
  tiltCorrected?: boolean;
};

export type Scan = ResolvedVolume & { volume: NiftiVolume; head: HeadMeasure };

export async function resolveVolume(dataDir: string, name: string, options: ResolveOptions = {}): Promise<ResolvedVolume> {
  const path = join(dataDir, name);
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (cause) {
    throw new DataInvalid(`${path}: no such file or folder`, { file: path, reason: 'missing' }, { cause });
  }
  if (!isDirectory) {
    if (!isNiftiName(name)) throw new DataInvalid(`${path}: not a NIfTI file (.nii or .nii.gz) or a folder holding a DICOM series`, { file: path, reason: 'kind' });
    return { niftiPath: path, source: 'nifti' };
  }
  const converted = await convertDicomSeries(path, {
    cacheDir: options.cacheDir ?? defaultDicomCacheDir(dataDir),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  return { niftiPath: converted.niftiPath, source: 'dicom', sidecar: converted.sidecar, tiltCorrected: converted.tiltCorrected };
}

/**
 * Resolves, reads and head-checks one volume. Errors name the file or series folder as
 * labels.csv does: a converted series' volume is reported under its folder, not the cache path.
 */
export async function readScan(dataDir: string, name: string, options: ResolveOptions = {}): Promise<Scan> {
  const resolved = await resolveVolume(dataDir, name, options);
  const shownAs = resolved.source === 'dicom' ? join(dataDir, name) : resolved.niftiPath;
  const read = await readNifti(resolved.niftiPath);
  const volume = resolved.source === 'dicom' ? { ...read, file: shownAs } : read;
  return { ...resolved, volume, head: requireHead(volume) };
}
