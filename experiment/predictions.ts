/**
 * Per-scan predictions of each compared model on the test set, saved in comparison.json so that
 * a reader (the HTML report's ROC curves and Bland–Altman plot) can go beyond the summary figures.
 */
import type { Tensors } from '../operator/contracts.js';
import { predictRegions } from '../edge-app/aspects/region-model.js';
import { DEFAULT_THRESHOLD, METRIC_REGIONS } from '../edge-app/metrics/index.js';

export type ExperimentPredictions = {
  /** Column order of `labels` and of every model's probabilities. */
  readonly regions: readonly string[];
  readonly threshold: number;
  /** One row per test scan: its id and 0/1 per region. */
  readonly scans: ReadonlyArray<{ readonly id: string; readonly labels: readonly number[] }>;
  /** Per model, one row per scan: the probability that each region is affected (4 decimals). */
  readonly probabilities: Readonly<Record<string, ReadonlyArray<readonly number[]>>>;
};

export function testPredictions(models: Readonly<Record<string, Tensors>>, samples: readonly { readonly id: string; readonly input: Float32Array; readonly labels: ArrayLike<number> }[], hidden: number, threshold = DEFAULT_THRESHOLD): ExperimentPredictions {
  const k = METRIC_REGIONS.length;
  const probabilities: Record<string, number[][]> = {};
  for (const [name, weights] of Object.entries(models)) {
    const p = predictRegions(weights, samples.map((s) => s.input), hidden);
    probabilities[name] = samples.map((_, i) => Array.from(p.subarray(i * k, (i + 1) * k), (v) => Math.round(v * 1e4) / 1e4));
  }
  return { regions: [...METRIC_REGIONS], threshold, scans: samples.map((s) => ({ id: s.id, labels: Array.from(s.labels) })), probabilities };
}
