/**
 * The metrics both ASPECTS apps report for a set of labelled samples: the
 * per-region metrics of the model's probabilities, and after a round's
 * training also the last epoch's loss and the number of steps.
 */
import type { Metrics } from '../../sdk/index.js';
import { computeAspectsMetrics, toMetrics } from '../metrics/index.js';
import type { FitResult } from './fit-loop.js';
import { REGION_COUNT } from './spec.js';

export type LabelledSample = { readonly input: Float32Array; readonly labels: ArrayLike<number> };

/** The samples' 10 region labels, one after the other. */
export function concatLabels(samples: readonly { readonly labels: ArrayLike<number> }[]): Uint8Array {
  const out = new Uint8Array(samples.length * REGION_COUNT);
  samples.forEach((s, i) => out.set(Array.from(s.labels), i * REGION_COUNT));
  return out;
}

/** Metrics of predicted probabilities (10 per sample, sample order) against the samples' labels. */
export function sampleMetrics(probabilities: Float32Array, samples: readonly LabelledSample[]): Metrics {
  return toMetrics(computeAspectsMetrics(probabilities, concatLabels(samples)));
}

/** The trained model's metrics on the validation split, with the training's last loss and step count. */
export function trainedMetrics(probabilities: Float32Array, validation: readonly LabelledSample[], fit: FitResult): Metrics {
  const last = fit.epochLosses[fit.epochLosses.length - 1];
  return { ...sampleMetrics(probabilities, validation), trainLoss: last !== undefined && Number.isFinite(last) ? last : null, steps: fit.steps };
}
