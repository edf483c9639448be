/**
 * An app that trains nothing: it hands back the weights it was given. Used to
 * measure fedgit's own overhead per round (bench) with weights of a chosen size.
 */
import { z } from 'zod';
import type { EdgeApp, Tensors } from '../../sdk/index.js';

export const NoopOptions = z.strictObject({
  sizeBytes: z.number().int().min(4).max(2 ** 31).default(1_000_000),
});
export type NoopOptions = z.output<typeof NoopOptions>;
export const NOOP_ARCHITECTURE = 'noop/v1';

export const noopSpec = (o: NoopOptions) => [{ name: 'noop.weight', shape: [Math.floor(o.sizeBytes / 4)] }];

export function noopInitialWeights(o: NoopOptions, seed: number): Tensors {
  const data = new Float32Array(Math.floor(o.sizeBytes / 4));
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761 + seed) % 1000) / 1000;
  return new Map([['noop.weight', { shape: [data.length], data }]]);
}

export function createNoopApp(o: NoopOptions): EdgeApp {
  return {
    architecture: NOOP_ARCHITECTURE,
    initialWeights: async (seed) => noopInitialWeights(o, seed),
    train: async (request) => ({ weights: request.weights, datasetSize: 1, metrics: { global: {}, local: {} } }),
    evaluate: async () => ({}),
    close: async () => undefined,
  };
}
