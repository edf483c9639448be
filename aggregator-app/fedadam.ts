/**
 * FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2):
 *   v ← β2 v + (1 − β2) Δ²
 * and the shared step of adaptive.ts (m with β1, x ← x + η m / (√v + τ)); no bias correction.
 * State: `m/<tensor>`, `v/<tensor>`, from zero.
 */
import type { Strategy } from '../sdk/index.js';
import { adaptiveKernel, type AdaptiveOptions } from './adaptive.js';
import { serverOptimiser } from './server-optimiser.js';

export const fedAdamStrategy = (o: AdaptiveOptions & { readonly beta2: number }): Strategy =>
  serverOptimiser('fedadam', adaptiveKernel(o, (v, deltaSquared) => o.beta2 * v + (1 - o.beta2) * deltaSquared));
