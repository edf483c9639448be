/**
 * FedAdagrad (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2):
 *   v ← v + Δ²
 * and the shared step of adaptive.ts (m with β1, x ← x + η m / (√v + τ)).
 * State: `m/<tensor>`, `v/<tensor>`, from zero.
 */
import type { Strategy } from '../sdk/index.js';
import { adaptiveKernel, type AdaptiveOptions } from './adaptive.js';
import { serverOptimiser } from './server-optimiser.js';

export const fedAdagradStrategy = (o: AdaptiveOptions): Strategy =>
  serverOptimiser('fedadagrad', adaptiveKernel(o, (v, deltaSquared) => v + deltaSquared));
