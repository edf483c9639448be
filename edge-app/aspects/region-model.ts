/**
 * aspects-region/v3 in TensorFlow.js: a shared MLP over each region's feature
 * vector plus a learned per-region embedding and bias. Layout conversion at
 * the border, pure inference, and a trainer holding tf.Variables with a fresh
 * Adam state per fit. Everything allocated here is disposed here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensors } from '../../sdk/index.js';
import { ensureGradients } from './gradients.js';
import { bceWithLogits } from './layers.js';
import { permute } from './model.js';
import { fitEpochs, makeAdam, type Adam, type FitOptions, type FitResult, type TrainSample } from './fit-loop.js';
import { DEFAULT_HIDDEN, DENSE_KERNELS, FEATURE_COUNT, REGION_COUNT, REGION_INPUT_SIZE, checkRegionWeights, regionTensorSpec } from './region-spec.js';

type Params = ReadonlyMap<string, tf.Tensor>;

/** Canonical (PyTorch [out, in]) → TF.js ([in, out]) for the dense kernels; other tensors unchanged. */
export function regionToTfjs(name: string, t: Tensor): Tensor {
  return DENSE_KERNELS.has(name) ? permute(t.data, t.shape, [1, 0]) : { shape: [...t.shape], data: t.data.slice() };
}
/** The inverse of regionToTfjs. */
export const regionToCanonical = regionToTfjs;

function toTf(weights: Tensors, hidden: number): Map<string, tf.Tensor> {
  checkRegionWeights(weights, hidden);
  const out = new Map<string, tf.Tensor>();
  for (const { name } of regionTensorSpec(hidden)) {
    const t = regionToTfjs(name, weights.get(name)!);
    out.set(name, tf.tensor(t.data, [...t.shape], 'float32'));
  }
  return out;
}

function param(params: Params, name: string): tf.Tensor {
  const t = params.get(name);
  if (t === undefined) throw new Error(`missing parameter ${name}`);
  return t;
}

/**
 * Logits [B, 10] for inputs [B, 10, F]:
 * h = relu(x·W1ᵀ + b1 + E[r]);  logit = h·w2ᵀ + b2 + c[r].
 */
export function regionLogits(params: Params, x: tf.Tensor3D): tf.Tensor2D {
  ensureGradients();
  const [batch] = x.shape;
  const hidden = param(params, 'fc1.bias').shape[0]!;
  const flat = tf.reshape(x, [batch * REGION_COUNT, FEATURE_COUNT]) as tf.Tensor2D;
  const pre = tf.reshape(tf.matMul(flat, param(params, 'fc1.weight') as tf.Tensor2D), [batch, REGION_COUNT, hidden]);
  const h = tf.relu(tf.add(tf.add(pre, param(params, 'fc1.bias')), param(params, 'region.embedding')));
  const out = tf.reshape(tf.matMul(tf.reshape(h, [batch * REGION_COUNT, hidden]) as tf.Tensor2D, param(params, 'fc2.weight') as tf.Tensor2D), [batch, REGION_COUNT]);
  return tf.add(tf.add(out, param(params, 'fc2.bias')), param(params, 'region.bias')) as tf.Tensor2D;
}

function inputTensor(inputs: Float32Array, batch: number): tf.Tensor3D {
  if (!Number.isSafeInteger(batch) || batch <= 0) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  if (inputs.length !== batch * REGION_INPUT_SIZE) throw new RangeError(`inputs hold ${inputs.length} values; a batch of ${batch} × [${REGION_COUNT}, ${FEATURE_COUNT}] needs ${batch * REGION_INPUT_SIZE}`);
  return tf.tensor3d(inputs, [batch, REGION_COUNT, FEATURE_COUNT]);
}

function labelTensor(labels: ArrayLike<number>, batch: number): tf.Tensor2D {
  if (labels.length !== batch * REGION_COUNT) throw new RangeError(`labels hold ${labels.length} values; a batch of ${batch} needs ${batch * REGION_COUNT}`);
  return tf.tensor2d(Float32Array.from(labels), [batch, REGION_COUNT]);
}

const disposeAll = (ts: Iterable<tf.Tensor>): void => { for (const t of ts) t.dispose(); };

function concat(inputs: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(inputs.length * REGION_INPUT_SIZE);
  inputs.forEach((v, i) => {
    if (v.length !== REGION_INPUT_SIZE) throw new RangeError(`input ${i} has ${v.length} values, expected ${REGION_INPUT_SIZE}`);
    out.set(v, i * REGION_INPUT_SIZE);
  });
  return out;
}

function predictWith(params: Params, inputs: readonly Float32Array[], batchSize: number): Float32Array {
  const out = new Float32Array(inputs.length * REGION_COUNT);
  for (let start = 0; start < inputs.length; start += batchSize) {
    const chunk = inputs.slice(start, start + batchSize);
    const probs = tf.tidy(() => tf.sigmoid(regionLogits(params, inputTensor(concat(chunk), chunk.length))));
    try {
      out.set(probs.dataSync(), start * REGION_COUNT);
    } finally {
      probs.dispose();
    }
  }
  return out;
}

/** Probabilities [n, 10] (row-major) of `weights` for n inputs of [10, F]. */
export function predictRegions(weights: Tensors, inputs: readonly Float32Array[], hidden: number = DEFAULT_HIDDEN, batchSize = 64): Float32Array {
  const params = toTf(weights, hidden);
  try {
    return predictWith(params, inputs, batchSize);
  } finally {
    disposeAll(params.values());
  }
}

/** Probabilities [batch, 10] for a batch given as one array [batch, 10, F] (parity tests). */
export function forwardRegions(weights: Tensors, inputs: Float32Array, batch: number, hidden: number = DEFAULT_HIDDEN): Float32Array {
  const size = REGION_INPUT_SIZE;
  return predictRegions(weights, Array.from({ length: batch }, (_, i) => inputs.subarray(i * size, (i + 1) * size)), hidden, batch);
}

export type RegionTrainSample = TrainSample;
export type RegionFitOptions = FitOptions;
export type RegionFitResult = FitResult;

export type RegionTrainerOptions = {
  readonly hidden?: number;
  readonly learningRate?: number;
  /** FedProx's μ (MODEL.md, "Network"); 0 or absent: plain local Adam. */
  readonly proximalMu?: number;
  /** The model the proximal term pulls toward; default: the weights the trainer starts from (the round's global model). */
  readonly globalWeights?: Tensors;
};

/** Holds aspects-region/v3 as tf.Variables. Call dispose() when done. */
export class RegionTrainer {
  readonly hidden: number;
  private readonly variables = new Map<string, tf.Variable>();
  private optimizer: Adam;
  /** FedProx: μ and w_global (TF.js layout), when μ > 0. */
  private readonly proximal: { readonly mu: number; readonly anchor: Map<string, tf.Tensor> } | null;
  private disposed = false;

  constructor(weights: Tensors, options: RegionTrainerOptions = {}) {
    this.hidden = options.hidden ?? DEFAULT_HIDDEN;
    const mu = options.proximalMu ?? 0;
    if (!(mu >= 0 && Number.isFinite(mu))) throw new RangeError(`proximalMu must be a finite number ≥ 0, got ${mu}`);
    this.optimizer = makeAdam(options.learningRate ?? 3e-3);
    const initial = toTf(weights, this.hidden);
    try {
      for (const [name, t] of initial) this.variables.set(name, tf.variable(t, true));
    } finally {
      disposeAll(initial.values());
    }
    this.proximal = mu > 0 ? { mu, anchor: toTf(options.globalWeights ?? weights, this.hidden) } : null;
  }

  /** Start a fresh Adam state (as every round does). */
  resetOptimizer(learningRate: number): void {
    const next = makeAdam(learningRate);
    this.optimizer.dispose();
    this.optimizer = next;
  }

  /** One Adam step on one batch ([batch, 10, F] inputs, [batch, 10] labels); returns the batch loss before the step. */
  trainStep(inputs: Float32Array, labels: ArrayLike<number>): number {
    this.assertLive();
    const batch = labels.length / REGION_COUNT;
    const dataLoss = () => bceWithLogits(regionLogits(this.variables, inputTensor(inputs, batch)), labelTensor(labels, batch));
    if (this.proximal !== null) return this.proximalStep(dataLoss, this.proximal);
    const cost = this.optimizer.minimize(dataLoss, true, [...this.variables.values()]);
    if (cost === null) throw new Error('optimizer returned no cost');
    try {
      return cost.dataSync()[0]!;
    } finally {
      cost.dispose();
    }
  }

  /**
   * FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020): one Adam
   * step on the gradient of F(w) + (μ/2)·‖w − w_global‖², i.e. ∇F + μ·(w − w_global) per tensor.
   * The term's gradient is added explicitly (no kernel gradients needed); returns F, the data loss.
   */
  private proximalStep(dataLoss: () => tf.Scalar, { mu, anchor }: { readonly mu: number; readonly anchor: Map<string, tf.Tensor> }): number {
    const { value, grads } = this.optimizer.computeGradients(dataLoss, [...this.variables.values()]);
    try {
      const total = [...this.variables].map(([name, v]) => ({
        name: v.name,
        tensor: tf.tidy(() => tf.add(grads[v.name]!, tf.mul(tf.sub(v, anchor.get(name)!), mu))),
      }));
      try {
        this.optimizer.applyGradients(total);
      } finally {
        disposeAll(total.map((g) => g.tensor));
      }
      return value.dataSync()[0]!;
    } finally {
      value.dispose();
      disposeAll(Object.values(grads));
    }
  }

  /**
   * `epochs` passes over `samples`, each in a Fisher–Yates order from one
   * mulberry32 stream seeded with `seed`; batches of `batchSize`, the last one
   * of an epoch may be smaller. Adam starts fresh. Checks `signal` before every step.
   */
  async fit(samples: readonly RegionTrainSample[], options: RegionFitOptions): Promise<RegionFitResult> {
    this.assertLive();
    return fitEpochs(this, samples, options, { defaultLearningRate: 3e-3, yieldEverySteps: 16 });
  }

  /** Probabilities [n, 10] of the current weights. */
  predict(inputs: readonly Float32Array[], batchSize = 64): Float32Array {
    this.assertLive();
    return predictWith(this.variables, inputs, batchSize);
  }

  /** Current weights in the canonical layout (fresh arrays). */
  getWeights(): Tensors {
    this.assertLive();
    const out = new Map<string, Tensor>();
    for (const [name, v] of this.variables) out.set(name, regionToCanonical(name, { shape: v.shape, data: v.dataSync() as Float32Array }));
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer.dispose();
    disposeAll(this.variables.values());
    this.variables.clear();
    if (this.proximal !== null) disposeAll(this.proximal.anchor.values());
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('RegionTrainer used after dispose()');
  }
}

/** Exactly one Adam step (fresh state) from `weights` on one batch; the new canonical weights. For parity tests. */
export function regionAdamStep(weights: Tensors, inputs: Float32Array, labels: ArrayLike<number>, learningRate: number, hidden: number = DEFAULT_HIDDEN): Tensors {
  return regionStep(weights, inputs, labels, { hidden, learningRate }).weights;
}

/** One Adam step (fresh state) with any trainer options (e.g. FedProx's μ and w_global): the new weights and the batch's data loss. */
export function regionStep(weights: Tensors, inputs: Float32Array, labels: ArrayLike<number>, options: RegionTrainerOptions): { weights: Tensors; loss: number } {
  const trainer = new RegionTrainer(weights, options);
  try {
    const loss = trainer.trainStep(inputs, labels);
    return { weights: trainer.getWeights(), loss };
  } finally {
    trainer.dispose();
  }
}
