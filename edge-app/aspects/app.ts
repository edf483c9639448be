/**
 * The built-in ASPECTS edge app: loads the local cohort once, splits it into
 * training and validation by sample id (the same split every round), and
 * trains aspects-cnn/v2 with TensorFlow.js from the weights it is given.
 */
import type { EdgeApp, Metrics, TrainRequest, TrainResult, Tensors } from '../../sdk/index.js';
import { Aborted } from '../../sdk/index.js';
import { loadCohort } from '../cohort/index.js';
import { sampleMetrics, trainedMetrics } from './round-metrics.js';
import { fnv1a32 } from '../random.js';
import { selectBackend, type BackendLogger } from '../tf-backend.js';
import { AspectsTrainer, predictVolumes } from './model.js';
import { ASPECTS_ARCHITECTURE, DEFAULT_ASPECTS_GRID, checkAspectsWeights, initialAspectsWeights, inputSize, validateGrid, type Grid } from './spec.js';

/** One preprocessed volume (the shape edge-app/cohort's loadCohort returns). */
export type AspectsSample = {
  readonly id: string;
  /** [D, H, W/2, 2] channels-last */
  readonly input: Float32Array;
  /** 10 values, 0/1, in region order */
  readonly labels: Uint8Array;
  readonly hemisphere: 'L' | 'R';
};

export type AspectsAppOptions = {
  readonly dataDir: string;
  readonly grid?: Grid;
  readonly batchSize?: number;
  readonly learningRate?: number;
  /** Share of the volumes kept for validation (default 0.2). */
  readonly validationFraction?: number;
  readonly logger?: BackendLogger;
  /** Replaces loadCohort (tests, or data already in memory). */
  readonly loadSamples?: (dataDir: string, grid: Grid) => Promise<readonly AspectsSample[]>;
};

export type SampleSplit<S> = { readonly train: S[]; readonly validation: S[] };

/**
 * Deterministic split by id: volumes sorted by (FNV-1a of id, id), the first
 * round(n · fraction) are validation (at most n − 1). Independent of any seed
 * and of the order given, so every round sees the same split.
 */
export function splitSamples<S extends { readonly id: string }>(samples: readonly S[], validationFraction: number): SampleSplit<S> {
  if (!(validationFraction >= 0 && validationFraction < 1)) throw new RangeError(`validationFraction must be in [0, 1), got ${validationFraction}`);
  const keyed = samples.map((s) => ({ s, h: fnv1a32(s.id) }));
  keyed.sort((a, b) => a.h - b.h || (a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : 0));
  const nValidation = Math.max(0, Math.min(Math.round(samples.length * validationFraction), samples.length - 1));
  const validationIds = new Set(keyed.slice(0, nValidation).map((k) => k.s));
  // keep the caller's order inside each part
  return { train: samples.filter((s) => !validationIds.has(s)), validation: samples.filter((s) => validationIds.has(s)) };
}

/** Metrics of `weights` on `samples` (validation or test set). */
export function evaluateSamples(weights: Tensors, samples: readonly { readonly input: Float32Array; readonly labels: ArrayLike<number> }[], grid: Grid = DEFAULT_ASPECTS_GRID, batchSize = 8): Metrics {
  const probabilities = predictVolumes(weights, samples.map((s) => s.input), grid, batchSize);
  return sampleMetrics(probabilities, samples);
}

/** A per-round shuffling seed from the plan seed and the round number. */
export function roundSeed(seed: number, round: number): number {
  return fnv1a32(`${seed >>> 0}/${round}`);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const r: unknown = signal.reason;
    throw new Aborted(r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted');
  }
}

/** One round: the incoming model on the validation split, `epochs` of training, the trained model on the same split. */
async function trainGridRound(request: TrainRequest, { train, validation }: SampleSplit<AspectsSample>, o: { grid: Grid; batchSize: number; learningRate: number }): Promise<TrainResult> {
  const { grid, batchSize, learningRate } = o;
  request.onProgress?.('evaluating the global model', 0);
  const global = evaluateSamples(request.weights, validation, grid);
  const trainer = new AspectsTrainer(request.weights, { grid, learningRate });
  try {
    const fit = await trainer.fit(train, {
      epochs: request.epochs,
      batchSize,
      learningRate,
      seed: roundSeed(request.seed, request.round),
      signal: request.signal,
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    });
    const weights = trainer.getWeights();
    const local = trainedMetrics(trainer.predict(validation.map((s) => s.input)), validation, fit);
    request.onProgress?.('trained', 1);
    return { weights, datasetSize: train.length, metrics: { global, local } };
  } finally {
    trainer.dispose();
  }
}

export function createAspectsApp(options: AspectsAppOptions): EdgeApp {
  const grid = validateGrid(options.grid ?? DEFAULT_ASPECTS_GRID);
  const batchSize = options.batchSize ?? 4;
  const learningRate = options.learningRate ?? 1e-3;
  const validationFraction = options.validationFraction ?? 0.2;
  const logger = options.logger;
  const load = options.loadSamples ?? (async (dir: string, g: Grid) => (await loadCohort(dir, { grid: g })).samples);

  let split: Promise<SampleSplit<AspectsSample>> | undefined;
  const data = (): Promise<SampleSplit<AspectsSample>> => {
    split ??= (async () => {
      await selectBackend(logger);
      const samples = await load(options.dataDir, grid);
      const size = inputSize(grid);
      for (const s of samples) {
        if (s.input.length !== size) throw new RangeError(`sample ${s.id}: input has ${s.input.length} values, grid ${grid.depth}×${grid.height}×${grid.width} needs ${size}`);
        if (s.labels.length !== 10) throw new RangeError(`sample ${s.id}: ${s.labels.length} labels, expected 10`);
      }
      const parts = splitSamples(samples, validationFraction);
      logger?.info(`ASPECTS cohort ${options.dataDir}: ${parts.train.length} training, ${parts.validation.length} validation volumes`);
      return parts;
    })();
    split.catch(() => (split = undefined)); // a failed load is retried next time
    return split;
  };

  return {
    architecture: ASPECTS_ARCHITECTURE,

    async initialWeights(seed: number): Promise<Tensors> {
      return initialAspectsWeights(seed, grid);
    },

    async train(request: TrainRequest): Promise<TrainResult> {
      throwIfAborted(request.signal);
      const split = await data();
      checkAspectsWeights(request.weights, grid);
      throwIfAborted(request.signal);
      return trainGridRound(request, split, { grid, batchSize, learningRate });
    },

    async evaluate(weights: Tensors, signal: AbortSignal): Promise<Metrics> {
      throwIfAborted(signal);
      const { validation } = await data();
      throwIfAborted(signal);
      return evaluateSamples(weights, validation, grid);
    },

    async close(): Promise<void> {
      split = undefined;
    },
  };
}
