/**
 * FedAvgM: FedAvg with server momentum (Hsu, Qi and Brown, "Measuring the Effects of
 * Non-Identical Data Distribution for Federated Visual Classification", arXiv:1909.06335, 2019).
 *
 * With the pseudo-gradient Δ = FedAvg(updates) − x (server-optimiser.ts):
 *   v ← β v + Δ,   x ← x + η v.
 * With β = 0 and η = 1 it is FedAvg. State: the momentum `v/<tensor>`, from zero.
 */
import type { Strategy } from '../sdk/index.js';
import { serverOptimiser, type ServerKernel } from './server-optimiser.js';

/** η: server learning rate; β: server momentum (Hsu et al. report their best results with β = 0.9, η = 1). */
export type FedAvgMOptions = { readonly eta: number; readonly beta: number };

export function fedAvgMKernel({ eta, beta }: FedAvgMOptions): ServerKernel {
  return {
    slots: ['v'],
    step(delta, slots) {
      slots[0] = beta * slots[0]! + delta;
      return eta * slots[0];
    },
  };
}

export const fedAvgMStrategy = (o: FedAvgMOptions): Strategy => serverOptimiser('fedavgm', fedAvgMKernel(o));
