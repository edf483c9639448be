/**
 * The adaptive server optimisers of Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar and
 * McMahan, "Adaptive Federated Optimization", ICLR 2021, Algorithm 2 — the part FedAdagrad,
 * FedAdam and FedYogi share. With the pseudo-gradient Δ = FedAvg(updates) − x:
 *   m ← β1 m + (1 − β1) Δ
 *   v ← (each optimiser's own rule, fedadagrad.ts / fedadam.ts / fedyogi.ts)
 *   x ← x + η m / (√v + τ)
 * No bias correction of m or v, as in the paper's Algorithm 2 (the step count is kept in the state
 * for the record, not used). The paper starts from m = 0 and any v ≥ τ²; fedgit starts from zero
 * state (m = v = 0), which τ in the denominator keeps finite.
 */
import type { ServerKernel } from './server-optimiser.js';

/** η: server learning rate; β1: momentum of m; τ: the adaptivity (smaller is more adaptive). */
export type AdaptiveOptions = { readonly eta: number; readonly beta1: number; readonly tau: number };

/** The second-moment rule: the new v from the old v and Δ². */
export type SecondMoment = (v: number, deltaSquared: number) => number;

export function adaptiveKernel({ eta, beta1, tau }: AdaptiveOptions, nextV: SecondMoment): ServerKernel {
  return {
    slots: ['m', 'v'],
    step(delta, slots) {
      slots[0] = beta1 * slots[0]! + (1 - beta1) * delta;
      slots[1] = nextV(slots[1]!, delta * delta);
      // Math.sqrt is correctly rounded (IEEE 754), so this is the same on every machine.
      return (eta * slots[0]) / (Math.sqrt(slots[1]) + tau);
    },
  };
}
