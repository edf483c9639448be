/**
 * aspects-cnn/v2 in TensorFlow.js: layout conversion at the border, pure
 * inference, and a trainer holding tf.Variables with a fresh Adam state per
 * fit. Everything allocated here is disposed here (tf.tidy or finally).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Tensors } from '../../sdk/index.js';
import { bceWithLogits, logits } from './layers.js';
import { fitEpochs, makeAdam, type Adam, type FitOptions, type FitResult, type TrainSample } from './fit-loop.js';

export { ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON, shuffledIndices, type FitOptions, type FitResult, type TrainSample } from './fit-loop.js';
import { DEFAULT_ASPECTS_GRID, REGION_COUNT, aspectsTensorSpec, checkAspectsWeights, inputShape, inputSize, type Grid } from './spec.js';


// ---------------------------------------------------------------- layouts

/** Permute a row-major array: out shape[i] = shape[perm[i]]. */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Tensor {
  const rank = shape.length;
  if (perm.length !== rank) throw new RangeError(`permutation of length ${perm.length} for rank ${rank}`);
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1]! * shape[i + 1]!;
  const strideOfOut = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src]!;
    for (let k = rank - 1; k >= 0; k--) {
      index[k]!++;
      src += strideOfOut[k]!;
      if (index[k]! < outShape[k]!) break;
      src -= strideOfOut[k]! * outShape[k]!;
      index[k] = 0;
    }
  }
  return { shape: outShape, data: out };
}

const CONV_TO_TFJS = [2, 3, 4, 1, 0]; // [out, in, kd, kh, kw] → [kd, kh, kw, in, out]
const CONV_TO_CANONICAL = [4, 3, 0, 1, 2]; // inverse
const DENSE = [1, 0];

/** One tensor from the canonical (PyTorch) layout to the tfjs layout; biases unchanged. */
export function canonicalToTfjs(tensor: Tensor): Tensor {
  if (tensor.shape.length === 5) return permute(tensor.data, tensor.shape, CONV_TO_TFJS);
  if (tensor.shape.length === 2) return permute(tensor.data, tensor.shape, DENSE);
  return { shape: [...tensor.shape], data: tensor.data.slice() };
}

/** One tensor from the tfjs layout back to the canonical layout. */
export function tfjsToCanonical(tensor: Tensor): Tensor {
  if (tensor.shape.length === 5) return permute(tensor.data, tensor.shape, CONV_TO_CANONICAL);
  if (tensor.shape.length === 2) return permute(tensor.data, tensor.shape, DENSE);
  return { shape: [...tensor.shape], data: tensor.data.slice() };
}

/** Canonical weights → tf tensors in the tfjs layout (the caller disposes them). */
function toTf(weights: Tensors, grid: Grid): Map<string, tf.Tensor> {
  checkAspectsWeights(weights, grid);
  const out = new Map<string, tf.Tensor>();
  for (const { name } of aspectsTensorSpec(grid)) {
    const t = canonicalToTfjs(weights.get(name)!);
    out.set(name, tf.tensor(t.data, [...t.shape], 'float32'));
  }
  return out;
}

function disposeAll(tensors: Iterable<tf.Tensor>): void {
  for (const t of tensors) t.dispose();
}

// ---------------------------------------------------------------- inputs

function checkBatch(inputs: Float32Array, batch: number, grid: Grid): void {
  if (!Number.isSafeInteger(batch) || batch <= 0) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  const expected = batch * inputSize(grid);
  if (inputs.length !== expected) {
    throw new RangeError(`inputs hold ${inputs.length} values; a batch of ${batch} × [${inputShape(grid).join(', ')}] needs ${expected}`);
  }
}

function labelTensor(labels: ArrayLike<number>, batch: number): tf.Tensor2D {
  if (labels.length !== batch * REGION_COUNT) throw new RangeError(`labels hold ${labels.length} values; a batch of ${batch} needs ${batch * REGION_COUNT}`);
  return tf.tensor2d(Float32Array.from(labels), [batch, REGION_COUNT]);
}

function inputTensor(inputs: Float32Array, batch: number, grid: Grid): tf.Tensor5D {
  checkBatch(inputs, batch, grid);
  return tf.tensor5d(inputs, [batch, ...inputShape(grid)]);
}

// ---------------------------------------------------------------- inference

/** Probabilities [batch, 10] (row-major) for a batch of inputs [batch, D, H, W/2, 2]. */
export function forward(weights: Tensors, inputs: Float32Array, batch: number, grid: Grid = DEFAULT_ASPECTS_GRID): Float32Array {
  const params = toTf(weights, grid);
  try {
    const probs = tf.tidy(() => tf.sigmoid(logits(params, inputTensor(inputs, batch, grid))));
    try {
      return probs.dataSync().slice() as Float32Array;
    } finally {
      probs.dispose();
    }
  } finally {
    disposeAll(params.values());
  }
}

/**
 * Probabilities [n, 10] for many volumes, `batchSize` at a time, converting
 * the weights once. Each input is one [D, H, W/2, 2] volume.
 */
export function predictVolumes(weights: Tensors, volumes: readonly Float32Array[], grid: Grid = DEFAULT_ASPECTS_GRID, batchSize = 8): Float32Array {
  const params = toTf(weights, grid);
  try {
    return predictWith(params, volumes, grid, batchSize);
  } finally {
    disposeAll(params.values());
  }
}

function predictWith(params: TfParamsLike, volumes: readonly Float32Array[], grid: Grid, batchSize: number): Float32Array {
  const out = new Float32Array(volumes.length * REGION_COUNT);
  for (let start = 0; start < volumes.length; start += batchSize) {
    const chunk = volumes.slice(start, start + batchSize);
    const probs = tf.tidy(() => tf.sigmoid(logits(params, inputTensor(concat(chunk), chunk.length, grid))));
    try {
      out.set(probs.dataSync(), start * REGION_COUNT);
    } finally {
      probs.dispose();
    }
  }
  return out;
}

type TfParamsLike = ReadonlyMap<string, tf.Tensor>;

/** Mean BCE of `weights` on one batch (labels 0/1, [batch, 10] row-major). */
export function aspectsLoss(weights: Tensors, inputs: Float32Array, labels: ArrayLike<number>, grid: Grid = DEFAULT_ASPECTS_GRID): number {
  const batch = labels.length / REGION_COUNT;
  const params = toTf(weights, grid);
  try {
    const loss = tf.tidy(() => bceWithLogits(logits(params, inputTensor(inputs, batch, grid)), labelTensor(labels, batch)));
    try {
      return loss.dataSync()[0]!;
    } finally {
      loss.dispose();
    }
  } finally {
    disposeAll(params.values());
  }
}

function concat(volumes: readonly Float32Array[]): Float32Array {
  if (volumes.length === 1) return volumes[0]!;
  const size = volumes[0]!.length;
  const out = new Float32Array(size * volumes.length);
  volumes.forEach((v, i) => {
    if (v.length !== size) throw new RangeError(`volume ${i} has ${v.length} values, expected ${size}`);
    out.set(v, i * size);
  });
  return out;
}

// ---------------------------------------------------------------- training




/** Holds the model as tf.Variables. Call dispose() when done. */
export class AspectsTrainer {
  readonly grid: Grid;
  private readonly variables = new Map<string, tf.Variable>();
  private optimizer: Adam;
  private disposed = false;

  constructor(weights: Tensors, options: { grid?: Grid; learningRate?: number } = {}) {
    this.grid = options.grid ?? DEFAULT_ASPECTS_GRID;
    this.optimizer = makeAdam(options.learningRate ?? 1e-3);
    const initial = toTf(weights, this.grid);
    try {
      for (const [name, t] of initial) this.variables.set(name, tf.variable(t, true));
    } finally {
      disposeAll(initial.values());
    }
  }

  /** Start a fresh Adam state (as every round does). */
  resetOptimizer(learningRate: number): void {
    const next = makeAdam(learningRate);
    this.optimizer.dispose();
    this.optimizer = next;
  }

  /** One Adam step on one batch (labels 0/1, [batch, 10] row-major); returns the batch loss before the step. */
  trainStep(inputs: Float32Array, labels: ArrayLike<number>): number {
    this.assertLive();
    const batch = labels.length / REGION_COUNT;
    checkBatch(inputs, batch, this.grid);
    const varList = [...this.variables.values()];
    const cost = this.optimizer.minimize(() => bceWithLogits(logits(this.variables, inputTensor(inputs, batch, this.grid)), labelTensor(labels, batch)), true, varList);
    if (cost === null) throw new Error('optimizer returned no cost');
    try {
      return cost.dataSync()[0]!;
    } finally {
      cost.dispose();
    }
  }

  /**
   * `epochs` passes over `samples` in an order shuffled from `seed` (one
   * mulberry32 stream for the whole fit), the last batch of an epoch may be
   * smaller. Adam state starts fresh. Checks `signal` before every step.
   */
  async fit(samples: readonly TrainSample[], options: FitOptions): Promise<FitResult> {
    this.assertLive();
    return fitEpochs(this, samples, options, { defaultLearningRate: 1e-3, yieldEverySteps: 1 });
  }

  /** Probabilities [n, 10] of the current weights. */
  predict(volumes: readonly Float32Array[], batchSize = 8): Float32Array {
    this.assertLive();
    return predictWith(this.variables, volumes, this.grid, batchSize);
  }

  /** Current weights in the canonical layout (fresh arrays). */
  getWeights(): Tensors {
    this.assertLive();
    const out = new Map<string, Tensor>();
    for (const [name, v] of this.variables) {
      out.set(name, tfjsToCanonical({ shape: v.shape, data: v.dataSync() as Float32Array }));
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer.dispose();
    disposeAll(this.variables.values());
    this.variables.clear();
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('AspectsTrainer used after dispose()');
  }
}

/**
 * Exactly one Adam step (fresh state, β1 0.9, β2 0.999, ε 1e-7) from `weights`
 * on one batch; returns the new canonical weights. For parity tests.
 */
export function adamStep(weights: Tensors, inputs: Float32Array, labels: ArrayLike<number>, learningRate: number, grid: Grid = DEFAULT_ASPECTS_GRID): Tensors {
  const trainer = new AspectsTrainer(weights, { grid, learningRate });
  try {
    trainer.trainStep(inputs, labels);
    return trainer.getWeights();
  } finally {
    trainer.dispose();
  }
}
