/**
 * The centralised baseline: the same model and hyper-parameters as the
 * federation, trained in this process on the union of the edges' data. Each
 * edge folder is split exactly as its edge app splits it (splitSamples per
 * folder), and the union of the training parts is trained on, so central and
 * federated see the same training volumes. One Adam state for the whole run
 * (a centralised trainer has no rounds); shuffling from the plan seed.
 */
import { computeAspectsMetrics } from '../edge-app/metrics/index.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import { shuffledIndices } from '../edge-app/aspects/model.js';
import { RegionTrainer } from '../edge-app/aspects/region-model.js';
import { concatLabels } from '../edge-app/aspects/round-metrics.js';
import { roundSeed, splitSamples } from '../edge-app/aspects/app.js';
import { REGION_COUNT, mulberry32 } from '../edge-app/aspects/spec.js';
import { loadRegionCohort, type RegionSample } from '../edge-app/preprocess/region-cohort.js';
import type { Tensors } from '../operator/contracts.js';
import type { Say } from './cohort.js';

export type TrainingSettings = {
  readonly hidden: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly validationFraction: number;
  readonly epochs: number;
  readonly seed: number;
};

export type EpochRecord = { readonly epoch: number; readonly trainLoss: number; readonly validationLoss: number | null; readonly validationMacroAuc: number | null; readonly seconds: number };

export type CentralResult = {
  readonly weights: Tensors;
  readonly trainCount: number;
  readonly validationCount: number;
  readonly epochs: EpochRecord[];
  /** loading and preprocessing the edge folders */
  readonly loadSeconds: number;
  /** training (and the per-epoch validation) only */
  readonly trainSeconds: number;
  readonly cpuSeconds: number;
};

/** Loads each folder's features (cached by the preprocessing step) and splits it as its edge app would; returns the unions. */
export async function loadCentralData(folders: readonly string[], validationFraction: number, say: Say): Promise<{ train: RegionSample[]; validation: RegionSample[] }> {
  const train: RegionSample[] = [];
  const validation: RegionSample[] = [];
  for (const folder of folders) {
    const { samples } = await loadRegionCohort(folder);
    // Split per folder, as each edge does: ids are file names, unique only within a folder.
    const parts = splitSamples(samples, validationFraction);
    train.push(...parts.train);
    validation.push(...parts.validation);
    say(`[central] ${folder}: ${parts.train.length} training + ${parts.validation.length} validation volumes`);
  }
  return { train, validation };
}

function batchOf(samples: readonly RegionSample[], indices: readonly number[]): { inputs: Float32Array; labels: Float32Array } {
  const size = samples[indices[0]!]!.input.length;
  const inputs = new Float32Array(size * indices.length);
  const labels = new Float32Array(REGION_COUNT * indices.length);
  indices.forEach((idx, i) => {
    const s = samples[idx]!;
    inputs.set(s.input, i * size);
    labels.set(Array.from(s.labels), i * REGION_COUNT);
  });
  return { inputs, labels };
}

/**
 * Trains from `initial` for `settings.epochs` epochs over `train`, printing
 * one line per epoch (mean training loss, validation loss and macro AUC).
 */
export async function trainCentral(initial: Tensors, data: { train: readonly RegionSample[]; validation: readonly RegionSample[] }, settings: TrainingSettings, say: Say, signal?: AbortSignal): Promise<Omit<CentralResult, 'loadSeconds'>> {
  await selectBackend();
  const { train, validation } = data;
  if (train.length === 0) throw new RangeError('central training: no training volumes');
  const cpuStart = process.cpuUsage();
  const started = Date.now();
  const trainer = new RegionTrainer(initial, { hidden: settings.hidden, learningRate: settings.learningRate });
  try {
    const random = mulberry32(roundSeed(settings.seed, 1));
    const epochs: EpochRecord[] = [];
    const validationLabels = concatLabels(validation);
    for (let epoch = 1; epoch <= settings.epochs; epoch++) {
      const epochStart = Date.now();
      const order = shuffledIndices(train.length, random);
      let lossSum = 0;
      for (let start = 0; start < order.length; start += settings.batchSize) {
        if (signal?.aborted) throw new Error('central training aborted');
        const chosen = order.slice(start, start + settings.batchSize);
        const { inputs, labels } = batchOf(train, chosen);
        lossSum += trainer.trainStep(inputs, labels) * chosen.length;
        await new Promise<void>((resolve) => setImmediate(resolve)); // keep the event loop (child output) flowing
      }
      const trainLoss = lossSum / train.length;
      let validationLoss: number | null = null;
      let validationMacroAuc: number | null = null;
      if (validation.length > 0) {
        const m = computeAspectsMetrics(trainer.predict(validation.map((s) => s.input)), validationLabels);
        validationLoss = m.loss;
        validationMacroAuc = m.macroAuc;
      }
      const seconds = (Date.now() - epochStart) / 1000;
      epochs.push({ epoch, trainLoss, validationLoss, validationMacroAuc, seconds });
      say(`[central] epoch ${epoch}/${settings.epochs}: train loss ${trainLoss.toFixed(4)}` +
        (validationLoss !== null ? `, validation loss ${validationLoss.toFixed(4)}, macro AUC ${validationMacroAuc?.toFixed(3) ?? '—'}` : '') +
        ` (${seconds.toFixed(1)} s)`);
    }
    const cpu = process.cpuUsage(cpuStart);
    return {
      weights: trainer.getWeights(),
      trainCount: train.length,
      validationCount: validation.length,
      epochs,
      trainSeconds: (Date.now() - started) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    trainer.dispose();
  }
}
