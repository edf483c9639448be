/**
 * The built-in ASPECTS edge app, aspects-region/v3: loads the local cohort's
 * per-region features once (registration and features cached in the data
 * folder), splits it by sample id (the same split every round), and trains
 * with TensorFlow.js from the weights it is given.
 */
import path from 'node:path';
import type { EdgeApp, Metrics, TrainRequest, TrainResult, Tensors } from '../../sdk/index.js';
import { Aborted } from '../../sdk/index.js';
import type { AtlasSource } from '../atlas/load-atlas.js';
import { sampleMetrics, trainedMetrics } from './round-metrics.js';
import { loadRegionCohort, type RegionSample } from '../preprocess/region-cohort.js';
import { selectBackend, type BackendLogger } from '../tf-backend.js';
import { roundSeed, splitSamples, type SampleSplit } from './app.js';
import { RegionTrainer, predictRegions } from './region-model.js';
import { DEFAULT_HIDDEN, REGION_ARCHITECTURE, REGION_COUNT, REGION_INPUT_SIZE, checkRegionWeights, initialRegionWeights } from './region-spec.js';

export type RegionAppOptions = {
  readonly dataDir: string;
  readonly hidden?: number;
  readonly batchSize?: number;
  readonly learningRate?: number;
  readonly validationFraction?: number;
  readonly registration?: 'rigid' | 'affine';
  /** A site's template/atlas files (relative paths are taken from dataDir). */
  readonly templateFile?: string;
  readonly atlasFile?: string;
  readonly logger?: BackendLogger;
  /** Replaces loadRegionCohort (tests, or data already in memory). */
  readonly loadSamples?: (dataDir: string) => Promise<readonly RegionSample[]>;
};

/** The plan's template/atlas options as an AtlasSource, relative paths taken from the data folder. */
export function atlasSource(dataDir: string, o: { templateFile?: string | undefined; atlasFile?: string | undefined }): AtlasSource {
  return {
    ...(o.templateFile ? { templateFile: path.resolve(dataDir, o.templateFile) } : {}),
    ...(o.atlasFile ? { atlasFile: path.resolve(dataDir, o.atlasFile) } : {}),
  };
}

/** Metrics of `weights` on `samples` (validation or test set). */
export function evaluateRegionSamples(weights: Tensors, samples: readonly { readonly input: Float32Array; readonly labels: ArrayLike<number> }[], hidden: number = DEFAULT_HIDDEN): Metrics {
  const probabilities = predictRegions(weights, samples.map((s) => s.input), hidden);
  return sampleMetrics(probabilities, samples);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const r: unknown = signal.reason;
    throw new Aborted(r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted');
  }
}

/** Registers and measures every volume of the folder (from its cache where it can), with progress lines. */
function loadWithProgress(options: RegionAppOptions): (dir: string) => Promise<RegionSample[]> {
  const logger = options.logger;
  return async (dir) => {
    const started = Date.now();
    let computed = 0;
    const cohort = await loadRegionCohort(dir, {
      atlas: atlasSource(dir, options), mode: options.registration ?? 'rigid',
      onProgress: (done, total, _id, cached) => {
        if (!cached) computed++;
        if (done === total || done % 10 === 0) logger?.info(`ASPECTS features ${done}/${total} (${computed} registered now, the rest from the cache)`);
      },
      onRefused: (_id, message) => logger?.info(`left out: ${message}`),
    });
    logger?.info(`ASPECTS features of ${cohort.count} volumes ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return cohort.samples;
  };
}

type Hyper = { readonly hidden: number; readonly batchSize: number; readonly learningRate: number };

/** One round: the incoming model on the validation split, `epochs` of training, the trained model on the same split. */
async function trainRegionRound(request: TrainRequest, { train, validation }: SampleSplit<RegionSample>, { hidden, batchSize, learningRate }: Hyper): Promise<TrainResult> {
  request.onProgress?.('evaluating the global model', 0);
  const global = evaluateRegionSamples(request.weights, validation, hidden);
  const proximalMu = request.proximalMu ?? 0;
  const trainer = new RegionTrainer(request.weights, { hidden, learningRate, proximalMu });
  try {
    const fit = await trainer.fit(train, {
      epochs: request.epochs, batchSize, learningRate, seed: roundSeed(request.seed, request.round), signal: request.signal,
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    });
    const weights = trainer.getWeights();
    const local = { ...trainedMetrics(trainer.predict(validation.map((s) => s.input)), validation, fit), ...(proximalMu > 0 ? { proximalMu } : {}) };
    request.onProgress?.('trained', 1);
    return { weights, datasetSize: train.length, metrics: { global, local } };
  } finally {
    trainer.dispose();
  }
}

export function createRegionApp(options: RegionAppOptions): EdgeApp {
  const hyper: Hyper = { hidden: options.hidden ?? DEFAULT_HIDDEN, batchSize: options.batchSize ?? 8, learningRate: options.learningRate ?? 3e-3 };
  const { hidden } = hyper;
  const validationFraction = options.validationFraction ?? 0.2;
  const logger = options.logger;
  const load = options.loadSamples ?? loadWithProgress(options);

  let split: Promise<SampleSplit<RegionSample>> | undefined;
  const data = (): Promise<SampleSplit<RegionSample>> => {
    split ??= (async () => {
      await selectBackend(logger);
      const samples = await load(options.dataDir);
      for (const s of samples) {
        if (s.input.length !== REGION_INPUT_SIZE) throw new RangeError(`sample ${s.id}: input has ${s.input.length} values, ${REGION_ARCHITECTURE} needs ${REGION_INPUT_SIZE}`);
        if (s.labels.length !== REGION_COUNT) throw new RangeError(`sample ${s.id}: ${s.labels.length} labels, expected ${REGION_COUNT}`);
      }
      const parts = splitSamples(samples, validationFraction);
      logger?.info(`ASPECTS cohort ${options.dataDir}: ${parts.train.length} training, ${parts.validation.length} validation volumes`);
      return parts;
    })();
    split.catch(() => (split = undefined)); // a failed load is retried next time
    return split;
  };

  return {
    architecture: REGION_ARCHITECTURE,
    appliesProximalTerm: true,

    async initialWeights(seed: number): Promise<Tensors> {
      return initialRegionWeights(seed, hidden);
    },

    async train(request: TrainRequest): Promise<TrainResult> {
      throwIfAborted(request.signal);
      const split = await data();
      checkRegionWeights(request.weights, hidden);
      throwIfAborted(request.signal);
      return trainRegionRound(request, split, hyper);
    },

    async evaluate(weights: Tensors, signal: AbortSignal): Promise<Metrics> {
      throwIfAborted(signal);
      const { validation } = await data();
      throwIfAborted(signal);
      return evaluateRegionSamples(weights, validation, hidden);
    },

    async close(): Promise<void> {
      split = undefined;
    },
  };
}
