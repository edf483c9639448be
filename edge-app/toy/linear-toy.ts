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

export function createLinearToyApp(o: LinearToyOptions, edge: string): EdgeApp {
  const train = makeDataset(o, edge, o.samplesPerEdge, 'train');
  const validation = makeDataset(o, edge, Math.max(20, Math.round(o.samplesPerEdge / 4)), 'validation');
  return {
    architecture: LINEAR_TOY_ARCHITECTURE,
    initialWeights: async (seed) => linearToyInitialWeights(o, seed),
    async train(request: TrainRequest): Promise<TrainResult> {
      const globalMetrics = evaluate(request.weights, validation);
      const w = Float64Array.from(request.weights.get('linear.weight')!.data);
      let b = request.weights.get('linear.bias')!.data[0]!;
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
          const gw = new Float64Array(o.features);
          let gb = 0;
          for (const i of batch) {
            const xi = train.x[i]!;
            const err = sigmoid(xi.reduce((s, v, j) => s + v * w[j]!, b)) - train.y[i]!;
            for (let j = 0; j < o.features; j++) gw[j]! += err * xi[j]!;
            gb += err;
          }
          for (let j = 0; j < o.features; j++) w[j]! -= (o.learningRate * gw[j]!) / batch.length;
          b -= (o.learningRate * gb) / batch.length;
        }
        request.onProgress?.(`epoch ${epoch + 1}/${request.epochs}`, (epoch + 1) / request.epochs);
        if (o.epochDelayMs > 0) await sleep(o.epochDelayMs, request.signal);
      }
      const weights: Tensors = new Map([
        ['linear.bias', { shape: [1], data: Float32Array.of(b) }],
        ['linear.weight', { shape: [1, o.features], data: Float32Array.from(w) }],
      ]);
      return { weights, datasetSize: train.x.length, metrics: { global: globalMetrics, local: evaluate(weights, validation) } };
    },
    evaluate: async (weights) => evaluate(weights, validation),
    close: async () => undefined,
  };
}
