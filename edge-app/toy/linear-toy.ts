/**
 * A tiny logistic-regression app on generated data: the fast app that lets the
 * workflow tests run real federated rounds in seconds. Each edge draws its own
 * samples (seeded by the data seed and the edge name) from one shared ground truth.
 */
import { z } from 'zod';
import type { EdgeApp, Metrics, Tensors, TrainRequest, TrainResult } from '../../sdk/index.js';
import { Aborted } from '../../sdk/index.js';
import { fnv1a32, gaussian, mulberry32 } from '../random.js';

/** 5·10⁷ float64 values = 400 MB per edge. */
const MAX_VALUES_PER_EDGE = 50_000_000;

export const LinearToyOptions = z.strictObject({
  features: z.number().int().min(1).max(100_000).default(8),
  samplesPerEdge: z.number().int().min(2).max(1_000_000).default(200),
  learningRate: z.number().positive().max(100).default(0.5),
  batchSize: z.number().int().min(1).max(100_000).default(20),
  dataSeed: z.number().int().min(0).default(7),
  /** Milliseconds to sleep per epoch: makes rounds long enough to kill a process mid-training in tests. */
  epochDelayMs: z.number().int().min(0).max(600_000).default(0),
}).refine((o) => o.features * o.samplesPerEdge <= MAX_VALUES_PER_EDGE, `features × samplesPerEdge must be at most ${MAX_VALUES_PER_EDGE.toLocaleString('en')} (the generated data must fit in memory)`);
export type LinearToyOptions = z.output<typeof LinearToyOptions>;

export const LINEAR_TOY_ARCHITECTURE = 'linear-toy/v1';

export function linearToySpec(o: LinearToyOptions) {
  return [
    { name: 'linear.bias', shape: [1] },
    { name: 'linear.weight', shape: [1, o.features] },
  ];
}

export function linearToyInitialWeights(o: LinearToyOptions, seed: number): Tensors {
  const random = mulberry32(seed);
  const weight = Float32Array.from({ length: o.features }, () => (random() - 0.5) * 0.02);
  return new Map([
    ['linear.bias', { shape: [1], data: new Float32Array(1) }],
    ['linear.weight', { shape: [1, o.features], data: weight }],
  ]);
}

type Dataset = { x: Float64Array[]; y: number[] };

function makeDataset(o: LinearToyOptions, edge: string, count: number, salt: string): Dataset {
  const truth = mulberry32(o.dataSeed);
  const w = Array.from({ length: o.features }, () => gaussian(truth));
  const random = mulberry32(fnv1a32(`${edge}/${salt}`) ^ o.dataSeed);
  const x: Float64Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < count; i++) {
    const xi = Float64Array.from({ length: o.features }, () => gaussian(random));
    const logit = xi.reduce((s, v, j) => s + v * w[j]!, 0.3) + 0.5 * gaussian(random);
    x.push(xi);
    y.push(logit > 0 ? 1 : 0);
  }
  return { x, y };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), reject(new Aborted('training stopped'))), { once: true });
  });

function evaluate(weights: Tensors, data: Dataset): Metrics {
  const w = weights.get('linear.weight')!.data;
  const b = weights.get('linear.bias')!.data[0]!;
  let loss = 0;
  let correct = 0;
  data.x.forEach((xi, i) => {
    const p = Math.min(Math.max(sigmoid(xi.reduce((s, v, j) => s + v * w[j]!, b)), 1e-7), 1 - 1e-7);
    loss -= data.y[i]! ? Math.log(p) : Math.log(1 - p);
    if ((p >= 0.5 ? 1 : 0) === data.y[i]) correct++;
  });
  return { loss: loss / data.x.length, accuracy: correct / data.x.length };
}

/** The toy model between steps, in float64. */
export type ToyParams = { readonly w: Float64Array; b: number };
export type ToyBatch = { readonly x: readonly ArrayLike<number>[]; readonly y: readonly number[] };

/**
 * One mini-batch SGD step on the mean logistic loss of `batch`, in place. With μ > 0 the loss gains
 * FedProx's proximal term (μ/2)·‖θ − θ_global‖² over every parameter (Li et al., "Federated
 * Optimization in Heterogeneous Networks", MLSys 2020), whose gradient μ·(θ − θ_global) pulls each
 * step back toward the round's global model `anchor`. μ = 0 is plain SGD.
 */
export function toySgdStep(params: ToyParams, anchor: ToyParams, batch: ToyBatch, learningRate: number, mu = 0): void {
  const { w } = params;
  const gw = new Float64Array(w.length);
  let gb = 0;
  batch.x.forEach((xi, i) => {
    let z = params.b;
    for (let j = 0; j < w.length; j++) z += xi[j]! * w[j]!;
    const err = sigmoid(z) - batch.y[i]!;
    for (let j = 0; j < w.length; j++) gw[j]! += err * xi[j]!;
    gb += err;
  });
  const n = batch.x.length;
  // Written so that μ = 0 gives exactly the bytes plain SGD gave before FedProx existed.
  for (let j = 0; j < w.length; j++) w[j]! -= (learningRate * gw[j]!) / n + learningRate * mu * (w[j]! - anchor.w[j]!);
  params.b -= (learningRate * gb) / n + learningRate * mu * (params.b - anchor.b);
}

function toyParams(weights: Tensors): ToyParams {
  return { w: Float64Array.from(weights.get('linear.weight')!.data), b: weights.get('linear.bias')!.data[0]! };
}

export function createLinearToyApp(o: LinearToyOptions, edge: string): EdgeApp {
  const train = makeDataset(o, edge, o.samplesPerEdge, 'train');
  const validation = makeDataset(o, edge, Math.max(20, Math.round(o.samplesPerEdge / 4)), 'validation');
  return {
    architecture: LINEAR_TOY_ARCHITECTURE,
    appliesProximalTerm: true,
    initialWeights: async (seed) => linearToyInitialWeights(o, seed),
    async train(request: TrainRequest): Promise<TrainResult> {
      const globalMetrics = evaluate(request.weights, validation);
      const anchor = toyParams(request.weights);
      const params = toyParams(request.weights);
      const mu = request.proximalMu ?? 0;
      const order = train.x.map((_, i) => i);
      const random = mulberry32(request.seed ^ request.round);
      for (let epoch = 0; epoch < request.epochs; epoch++) {
        if (request.signal.aborted) throw new Aborted('training stopped');
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        for (let start = 0; start < order.length; start += o.batchSize) {
          const batch = order.slice(start, start + o.batchSize);
          toySgdStep(params, anchor, { x: batch.map((i) => train.x[i]!), y: batch.map((i) => train.y[i]!) }, o.learningRate, mu);
        }
        request.onProgress?.(`epoch ${epoch + 1}/${request.epochs}`, (epoch + 1) / request.epochs);
        if (o.epochDelayMs > 0) await sleep(o.epochDelayMs, request.signal);
      }
      const weights: Tensors = new Map([
        ['linear.bias', { shape: [1], data: Float32Array.of(params.b) }],
        ['linear.weight', { shape: [1, o.features], data: Float32Array.from(params.w) }],
      ]);
      const local = { ...evaluate(weights, validation), ...(mu > 0 ? { proximalMu: mu } : {}) };
      return { weights, datasetSize: train.x.length, metrics: { global: globalMetrics, local } };
    },
    evaluate: async (weights) => evaluate(weights, validation),
    close: async () => undefined,
  };
}
