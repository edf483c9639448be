/**
 * A labelled folder → aspects-region/v3 inputs: each volume named in
 * labels.csv is read (NIfTI or DICOM series, head check: edge-app/intake),
 * registered into MNI (edge-app/registration, rigid by default, cached),
 * resampled at 2 mm onto FEATURE_GRID and turned into per-region features
 * against the mirror (region-features.ts). The features of both hemispheres
 * are cached per file hash, atlas and preprocessing version in
 * `<folder>/.fedgit-cache/aspects-region/`, so central and federated runs and
 * later rounds never recompute them.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataInvalid } from '../../sdk/index.js';
import { builtinAtlas, loadAtlas, type Atlas, type AtlasSource } from '../atlas/load-atlas.js';
import { readLabelsCsv } from '../cohort/labels-csv.js';
import { CACHE_FOLDER, readScan, resolveVolume } from '../intake/resolve-volume.js';
import { blockAverage, registerVolume, resampleToTemplate, REGISTRATION_MM, type RegistrationMode, type RegistrationQuality } from '../registration/index.js';
import { FEATURE_GRID, FEATURE_VOXEL_MM, labelsOnFeatureGrid } from './feature-grid.js';
import { FEATURE_COUNT, REGION_COUNT, greyThreshold, indexAtlas, regionFeatures, type Hemisphere } from './region-features.js';

/** Bump whenever anything that changes a feature value changes. */
export const FEATURES_VERSION = 'aspects-region-features/1';
/** Sub-folder of the data folder's `.fedgit-cache`. */
export const FEATURE_CACHE_FOLDER = 'aspects-region';

export type RegionSample = {
  /** The file or DICOM series folder name, as in labels.csv. */
  readonly id: string;
  /** [10 regions][FEATURE_COUNT] row-major, of the symptomatic hemisphere. */
  readonly input: Float32Array;
  /** 10 values, 0/1, region order. */
  readonly labels: Uint8Array;
  readonly hemisphere: Hemisphere;
};

export type VolumeFeatures = { readonly L: Float32Array; readonly R: Float32Array; readonly quality?: RegistrationQuality };

export type RegionPreprocessing = {
  /** A site's own template/atlas files; default the built-in ones. */
  readonly atlas?: AtlasSource;
  /** Registration model, default rigid. */
  readonly mode?: RegistrationMode;
  /** Threads per elastix run (default 1: volumes run side by side instead). */
  readonly threads?: number;
  readonly signal?: AbortSignal;
};

export type LoadRegionCohortOptions = RegionPreprocessing & {
  /** Labels CSV; default `<folder>/labels.csv`. */
  readonly csv?: string;
  /** Volumes in flight at once (default: available cores, at most 4). */
  readonly concurrency?: number;
  /** Called after each volume, with whether it came from the feature cache. */
  readonly onProgress?: (done: number, total: number, id: string, cached: boolean) => void;
  /**
   * A volume the intake or the registration refuses (DataInvalid: no head, no
   * orientation, failed registration, ASPECTS levels not covered) is left out
   * and reported here with its one-line reason, unless `refuse` is 'fail'.
   */
  readonly onRefused?: (id: string, message: string) => void;
  /** 'skip' (default): leave refused volumes out; 'fail': throw the first refusal. */
  readonly refuse?: 'skip' | 'fail';
};

export type RegionCohort = {
  readonly folder: string;
  readonly csv: string;
  /** Volumes in `samples` (refused ones excluded). */
  readonly count: number;
  readonly samples: RegionSample[];
  /** Volumes left out, with the reason, in CSV order. */
  readonly refused: { readonly id: string; readonly message: string }[];
};

type Context = { atlas: Atlas; labels: Uint8Array; atlasKey: string };
const contexts = new Map<string, Promise<Context>>();

/** The atlas on the feature grid and a key naming it (built-in, or the sha256 of the site's files). */
function context(source: AtlasSource = {}): Promise<Context> {
  const id = JSON.stringify([source.templateFile ?? null, source.atlasFile ?? null, source.voxelMm ?? 2]);
  let c = contexts.get(id);
  if (!c) {
    c = (async () => {
      const atlas = source.templateFile || source.atlasFile ? await loadAtlas(source) : builtinAtlas(source.voxelMm ?? 2);
      const hash = createHash('sha256').update(id);
      for (const f of [source.templateFile, source.atlasFile]) if (f) hash.update(await readFile(f));
      return { atlas, labels: labelsOnFeatureGrid(atlas.atlas), atlasKey: source.templateFile || source.atlasFile ? `site:${hash.digest('hex')}` : `builtin:${source.voxelMm ?? 2}mm` };
    })();
    c.catch(() => contexts.delete(id));
    contexts.set(id, c);
  }
  return c;
}

/**
 * Features of both hemispheres for one volume of `folder` (a name from
 * labels.csv), from the cache or computed (read, head check, register,
 * resample, compare). Errors are DataInvalid naming the file.
 */
export async function volumeFeatures(folder: string, name: string, options: RegionPreprocessing = {}): Promise<VolumeFeatures & { cached: boolean }> {
  const ctx = await context(options.atlas);
  const mode = options.mode ?? 'rigid';
  const resolved = await resolveVolume(folder, name);
  const fileHash = createHash('sha256').update(await readFile(resolved.niftiPath)).digest('hex');
  const key = createHash('sha256').update([FEATURES_VERSION, ctx.atlasKey, mode, fileHash].join('\n')).digest('hex');
  const cacheDir = join(folder, CACHE_FOLDER, FEATURE_CACHE_FOLDER);
  const cached = await readCachedFeatures(cacheDir, key);
  if (cached) return { ...cached, cached: true };

  const { volume } = await readScan(folder, name);
  // The largest array derived from a scan, made once for registration and, at the same voxel size, for the features.
  const reduced = blockAverage(volume, REGISTRATION_MM);
  const registration = await registerVolume({
    volume, reduced, template: ctx.atlas.template, atlas: ctx.atlas.atlas, mode,
    cacheDir: join(folder, CACHE_FOLDER, 'registration'), threads: options.threads ?? 1,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const features = featuresFromRegistered(FEATURE_VOXEL_MM === REGISTRATION_MM ? reduced : blockAverage(volume, FEATURE_VOXEL_MM), registration.toTemplate, ctx.labels);
  const entry = { ...features, quality: registration.quality };
  await writeCachedFeatures(cacheDir, key, name, entry);
  return { ...entry, cached: false };
}

/**
 * Resample a scan into FEATURE_GRID through `toTemplate` and compute both hemispheres' features.
 * `reduced` is the scan block-averaged to FEATURE_VOXEL_MM (blockAverage); that is a no-op on a
 * scan already that coarse. Pure.
 */
export function featuresFromRegistered(reduced: Parameters<typeof blockAverage>[0], toTemplate: readonly number[], labels: Uint8Array): VolumeFeatures {
  const hu = resampleToTemplate(reduced, toTemplate, FEATURE_GRID);
  const threshold = greyThreshold(hu, indexAtlas(labels).labelled); // one grey/white split for both sides
  return { L: regionFeatures(hu, labels, 'L', threshold), R: regionFeatures(hu, labels, 'R', threshold) };
}

/** Every volume of a labelled folder as model inputs (symptomatic hemisphere from labels.csv), in CSV order. */
export async function loadRegionCohort(folder: string, options: LoadRegionCohortOptions = {}): Promise<RegionCohort> {
  const csv = options.csv ?? join(folder, 'labels.csv');
  const rows = await readLabelsCsv(csv);
  await context(options.atlas); // build the atlas once before the workers start
  const samples = new Array<RegionSample | { id: string; message: string }>(rows.length);
  let next = 0, done = 0;
  const worker = async (): Promise<void> => {
    while (next < rows.length) {
      const n = next++;
      const row = rows[n]!;
      let cached = false;
      try {
        const f = await volumeFeatures(folder, row.file, options);
        cached = f.cached;
        samples[n] = { id: row.file, input: f[row.hemisphere], labels: row.labels, hemisphere: row.hemisphere };
      } catch (e) {
        if (!(e instanceof DataInvalid) || options.refuse === 'fail') throw e;
        samples[n] = { id: row.file, message: e.message };
        options.onRefused?.(row.file, e.message);
      }
      options.onProgress?.(++done, rows.length, row.file, cached);
    }
  };
  const concurrency = Math.max(1, options.concurrency ?? Math.min(4, availableParallelism()));
  await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  const kept = samples.filter((s): s is RegionSample => 'input' in s);
  const refused = samples.filter((s): s is { id: string; message: string } => 'message' in s);
  if (kept.length === 0 && rows.length > 0) {
    throw new DataInvalid(`${folder}: every volume was refused (${refused[0]!.message}${refused.length > 1 ? ` and ${refused.length - 1} more` : ''})`, { file: folder, reason: 'all-refused' });
  }
  return { folder, csv, count: kept.length, samples: kept, refused };
}

// ---------------------------------------------------------------- cache

type CacheEntry = { format: string; key: string; file: string; L: number[]; R: number[]; quality?: RegistrationQuality };

async function readCachedFeatures(dir: string, key: string): Promise<VolumeFeatures | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, `${key}.json`), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const e = JSON.parse(text) as CacheEntry;
    const size = REGION_COUNT * FEATURE_COUNT;
    if (e.format !== FEATURES_VERSION || e.key !== key || e.L?.length !== size || e.R?.length !== size) return undefined;
    return { L: Float32Array.from(e.L), R: Float32Array.from(e.R), ...(e.quality ? { quality: e.quality } : {}) };
  } catch {
    return undefined; // torn or edited: recomputed and overwritten
  }
}

async function writeCachedFeatures(dir: string, key: string, file: string, f: VolumeFeatures): Promise<void> {
  await mkdir(dir, { recursive: true });
  const target = join(dir, `${key}.json`);
  const temporary = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  // float32 values printed in full: JSON numbers round-trip exactly.
  const entry: CacheEntry = { format: FEATURES_VERSION, key, file, L: Array.from(f.L), R: Array.from(f.R), ...(f.quality ? { quality: f.quality } : {}) };
  await writeFile(temporary, JSON.stringify(entry) + '\n');
  await rename(temporary, target);
}

/** Hemisphere type for callers. */
export type { Hemisphere };
