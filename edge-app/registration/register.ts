import { readFile } from 'node:fs/promises';
import { DataInvalid } from '../../sdk/index.js';
import type { LabelVolume } from '../atlas/aspects-atlas.js';
import { builtinAtlas } from '../atlas/load-atlas.js';
import { invertAffine, multiplyAffines } from '../nifti/affine.js';
import { parseNifti } from '../nifti/parse-nifti.js';
import type { NiftiVolume } from '../nifti/volume.js';
import { cacheKey, readCachedRegistration, writeCachedRegistration } from './cache.js';
import type { Voxels } from './downsample.js';
import { prepareImage, type PreparedImage } from './elastix-images.js';
import { runElastix } from './elastix.js';
import { findHead, type Head } from './head.js';
import { renderParameters, type RegistrationMode } from './parameters.js';
import { aspectsCoverage, judgeQuality, midSagittalSymmetry, parseFinalMetric, QUALITY_LIMITS, type QualityLimits, type RegistrationQuality } from './quality.js';
import { lpsToRas, parseTransformParameters, rasToLps, transformMatrixLps } from './transform.js';

export type RegisterOptions = ({ file: string; volume?: undefined } | { volume: NiftiVolume; file?: undefined }) & {
  /** CT template in MNI space; default the built-in one. */
  template?: NiftiVolume;
  /** ASPECTS atlas in the template's space (for the coverage and symmetry checks); default the built-in one. */
  atlas?: LabelVolume;
  /** Folder of cached transforms; no caching without it. */
  cacheDir?: string;
  mode?: RegistrationMode;
  signal?: AbortSignal;
  limits?: Partial<QualityLimits>;
  timeoutMs?: number;
  threads?: number;
  /** elastix executable; default `elastix` on PATH. */
  elastix?: string;
  /** `blockAverage(volume, REGISTRATION_MM)` if the caller has it already (it is the volume's largest derived array). */
  reduced?: Voxels;
};

export type Registration = {
  /** Row-major 4×4: scan world (RAS+ mm) → template world (MNI RAS+ mm). */
  toTemplate: number[];
  quality: RegistrationQuality;
  /** Wall time of the elastix run that produced the transform (also when served from the cache). */
  seconds: number;
  cached: boolean;
};

/** A head smaller than this is not a head (a 5 cm slab of brain is ~500 mL). */
const MIN_HEAD_ML = 300;

type PreparedTemplate = { prepared: PreparedImage; head: Head; hash: Uint8Array[] };
const preparedTemplates = new WeakMap<NiftiVolume, PreparedTemplate>();

/**
 * Registers one head CT into template space with elastix, rigid by default.
 * Refuses (DataInvalid naming the file) a volume without a head, a failed
 * registration and a scan that does not cover both ASPECTS levels.
 */
export async function registerVolume(options: RegisterOptions): Promise<Registration> {
  const mode = options.mode ?? 'rigid';
  const limits = { ...QUALITY_LIMITS, ...options.limits };
  const builtin = options.template && options.atlas ? undefined : builtinAtlas();
  const template = options.template ?? builtin!.template;
  const atlas = options.atlas ?? builtin!.atlas;

  const bytes = options.file !== undefined ? await readFile(options.file) : undefined;
  const volume = options.volume ?? parseNifti(bytes!, options.file!);
  const file = options.file ?? volume.file;

  const fixed = prepareTemplate(template);
  const parameters = renderParameters({ mode, centreLps: rasToLps(fixed.head.centroid as [number, number, number]) });
  const key = cacheKey([mode, parameters, fixed.hash, bytes ?? volumeBytes(volume)]);
  const cached = options.cacheDir ? await readCachedRegistration(options.cacheDir, key) : undefined;
  if (cached) {
    judgeQuality(file, cached.quality, limits);
    return { toTemplate: cached.toTemplate, quality: cached.quality, seconds: cached.seconds, cached: true };
  }

  const head = findHead(volume);
  if (!(head.volumeMl >= MIN_HEAD_ML)) {
    throw new DataInvalid(`${file}: no head found (${head.volumeMl.toFixed(0)} mL of tissue between −100 and 3000 HU, needs ${MIN_HEAD_ML} mL)`,
      { file, reason: 'no-head', headMl: head.volumeMl });
  }
  // Move the head's centre onto the template's first: scanner tables put it a metre away.
  const shift = [0, 1, 2].map((a) => head.centroid[a]! - fixed.head.centroid[a]!) as [number, number, number];
  const moving = prepareImage(volume, shift, undefined, options.reduced);
  const result = await runElastix({
    file, fixed: fixed.prepared.image, fixedMask: fixed.prepared.mask, moving: moving.image, movingMask: moving.mask,
    parameters, threads: options.threads, timeoutMs: options.timeoutMs, signal: options.signal, executable: options.elastix,
  });
  let transform;
  try {
    transform = parseTransformParameters(result.transformParameters);
  } catch (cause) {
    throw new DataInvalid(`${file}: unreadable elastix transform (${(cause as Error).message})`, { file, reason: 'registration-failed' }, { cause });
  }
  // elastix maps template points to (shifted) scan points.
  const toShifted = lpsToRas(transformMatrixLps(transform));
  const fromTemplate = multiplyAffines([1, 0, 0, shift[0], 0, 1, 0, shift[1], 0, 0, 1, shift[2], 0, 0, 0, 1], toShifted);
  const quality: RegistrationQuality = {
    finalMetric: parseFinalMetric(result.log),
    symmetry: midSagittalSymmetry(moving.sampled, toShifted, atlas),
    coverage: aspectsCoverage(volume, fromTemplate, atlas),
  };
  const toTemplate = invertAffine(fromTemplate);
  if (options.cacheDir) await writeCachedRegistration(options.cacheDir, { key, file, toTemplate, quality, seconds: result.seconds });
  judgeQuality(file, quality, limits);
  return { toTemplate, quality, seconds: result.seconds, cached: false };
}

function prepareTemplate(template: NiftiVolume): PreparedTemplate {
  let prepared = preparedTemplates.get(template);
  if (!prepared) {
    prepared = { prepared: prepareImage(template, [0, 0, 0], 10), head: findHead(template), hash: volumeBytes(template) };
    preparedTemplates.set(template, prepared);
  }
  return prepared;
}

/** The bytes that define a volume in memory: dims, affine and voxels (a view, not a copy: volumes are tens of MB). */
function volumeBytes(volume: Pick<NiftiVolume, 'dims' | 'affine' | 'hu'>): Uint8Array[] {
  const header = Buffer.from(JSON.stringify({ dims: volume.dims, affine: volume.affine }));
  return [header, new Uint8Array(volume.hu.buffer, volume.hu.byteOffset, volume.hu.byteLength)];
}
