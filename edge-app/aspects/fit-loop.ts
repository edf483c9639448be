/**
 * The local training loop both ASPECTS models share: epochs over the samples
 * in a Fisher–Yates order from one mulberry32 stream, batches of `batchSize`
 * (the last of an epoch may be smaller), a fresh Adam state, a check for abort
 * before every step. The model only says how one step is taken.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Aborted } from '../../sdk/index.js';
import type { Progress } from '../../sdk/index.js';
import { REGION_COUNT } from './spec.js';
import { mulberry32 } from '../random.js';

export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.999;
export const ADAM_EPSILON = 1e-7;

export type Adam = ReturnType<typeof tf.train.adam>;

export function makeAdam(learningRate: number): Adam {
  if (!(learningRate > 0)) throw new RangeError(`learning rate must be positive, got ${learningRate}`);
  return tf.train.adam(learningRate, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON);
}

export type TrainSample = { readonly input: Float32Array; readonly labels: ArrayLike<number> };

export type FitOptions = {
  readonly epochs: number;
  readonly seed: number;
  readonly batchSize?: number;
  readonly learningRate?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: Progress;
};

export type FitResult = { readonly steps: number; readonly epochLosses: number[] };

/** What the loop needs of a trainer. */
export type Stepper = {
  resetOptimizer(learningRate: number): void;
  /** One step on a batch ([batch, …] inputs, [batch, 10] labels); the batch loss before the step. */
  trainStep(inputs: Float32Array, labels: ArrayLike<number>): number;
};

/** Fisher–Yates order of 0…n−1 from `random`. */
export function shuffledIndices(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.message;
  return typeof r === 'string' ? r : 'training aborted';
}

function concat(inputs: readonly Float32Array[]): Float32Array {
  if (inputs.length === 1) return inputs[0]!;
  const size = inputs[0]!.length;
  const out = new Float32Array(size * inputs.length);
  inputs.forEach((v, i) => {
    if (v.length !== size) throw new RangeError(`input ${i} has ${v.length} values, expected ${size}`);
    out.set(v, i * size);
  });
  return out;
}

/**
 * Runs `options.epochs` epochs. `yieldEverySteps`: how often the event loop gets a turn (so an
 * abort is delivered); `defaultLearningRate`: the model's, when the options give none.
 */
export async function fitEpochs(trainer: Stepper, samples: readonly TrainSample[], options: FitOptions, model: { defaultLearningRate: number; yieldEverySteps: number }): Promise<FitResult> {
  const batchSize = options.batchSize ?? 4;
  if (!Number.isSafeInteger(options.epochs) || options.epochs < 0) throw new RangeError(`epochs must be a non-negative integer, got ${options.epochs}`);
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  trainer.resetOptimizer(options.learningRate ?? model.defaultLearningRate);
  const random = mulberry32(options.seed);
  const totalSteps = Math.ceil(samples.length / batchSize) * options.epochs;
  const epochLosses: number[] = [];
  let steps = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffledIndices(samples.length, random);
    let lossSum = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      if (options.signal?.aborted) throw new Aborted(abortReason(options.signal));
      const chosen = order.slice(start, start + batchSize).map((i) => samples[i]!);
      const labels = new Float32Array(chosen.length * REGION_COUNT);
      chosen.forEach((s, i) => labels.set(Array.from(s.labels), i * REGION_COUNT));
      const loss = trainer.trainStep(concat(chosen.map((s) => s.input)), labels);
      lossSum += loss * chosen.length;
      steps++;
      options.onProgress?.(`epoch ${epoch + 1}/${options.epochs} step ${steps}/${totalSteps} loss ${loss.toFixed(4)}`, totalSteps > 0 ? steps / totalSteps : 1);
      if (steps % model.yieldEverySteps === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (options.signal?.aborted) throw new Aborted(abortReason(options.signal));
    epochLosses.push(samples.length > 0 ? lossSum / samples.length : NaN);
  }
  return { steps, epochLosses };
}
