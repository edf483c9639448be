/**
 * FedYogi (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2; the Yogi rule
 * of Zaheer et al., NeurIPS 2018):
 *   v ← v − (1 − β2) Δ² sign(v − Δ²)
 * and the shared step of adaptive.ts (m with β1, x ← x + η m / (√v + τ)); no bias correction.
 * v moves by at most (1 − β2) Δ² a step, in either direction (sign(0) = 0: v stays).
 * State: `m/<tensor>`, `v/<tensor>`, from zero.
 */
import type { Strategy } from '../sdk/index.js';
import { adaptiveKernel, type AdaptiveOptions } from './adaptive.js';
import { serverOptimiser } from './server-optimiser.js';

export const fedYogiStrategy = (o: AdaptiveOptions & { readonly beta2: number }): Strategy =>
  serverOptimiser('fedyogi', adaptiveKernel(o, (v, deltaSquared) => v - (1 - o.beta2) * deltaSquared * Math.sign(v - deltaSquared)));
