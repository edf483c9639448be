/**
 * Metrics of ASPECTS predictions, as clinical readers expect them: per class
 * (0 = region unaffected, 1 = affected, pooled over all regions) precision,
 * recall, F1 and support; per region sensitivity, specificity and AUC;
 * ASPECTS score agreement and the ASPECTS ≥ 6 dichotomy; mean BCE.
 * Pure functions over probabilities and 0/1 labels, both [n, 10] row-major.
 * Undefined ratios (0/0, a class absent) are null, never NaN, so the result is JSON.
 */
import type { Metrics } from '../../sdk/index.js';
import { rocAuc } from './auc.js';

/** Region names in output order (same as edge-app/aspects/spec.ts; duplicated to keep metrics free of model code). */
export const METRIC_REGIONS = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'] as const;
const K = METRIC_REGIONS.length;

/** Probability at or above which a region counts as affected. */
export const DEFAULT_THRESHOLD = 0.5;
/** Probabilities are clipped to [ε, 1 − ε] for the loss (as Keras does). */
export const LOSS_EPSILON = 1e-7;
/** ASPECTS ≥ this is the "favourable" side of the dichotomy. */
export const ASPECTS_DICHOTOMY = 6;

export type ClassMetrics = { precision: number | null; recall: number | null; f1: number | null; support: number };
export type RegionMetrics = { sensitivity: number | null; specificity: number | null; auc: number | null; positives: number; negatives: number };
export type AspectsAgreement = {
  /** mean of predicted − true ASPECTS */
  meanDifference: number | null;
  meanAbsoluteDifference: number | null;
  /** percentage (0–100) of volumes with |predicted − true| ≤ 1 */
  withinOnePercent: number | null;
  /** fraction of volumes on the same side of ASPECTS ≥ 6 */
  dichotomyAccuracy: number | null;
};

export type AspectsMetrics = {
  n: number;
  loss: number | null;
  /** fraction of all n × 10 region decisions that are right */
  accuracy: number | null;
  macroAuc: number | null;
  classes: { '0': ClassMetrics; '1': ClassMetrics };
  regions: { [region: string]: RegionMetrics };
  aspects: AspectsAgreement;
};

const ratio = (num: number, den: number): number | null => (den === 0 ? null : num / den);

function f1Of(precision: number | null, recall: number | null): number | null {
  if (precision === null || recall === null) return null;
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

function classMetrics(tp: number, fp: number, fn: number): ClassMetrics {
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return { precision, recall, f1: f1Of(precision, recall), support: tp + fn };
}

/** ASPECTS = 10 − number of affected regions of one volume. */
export function aspectsScore(affected: ArrayLike<number | boolean>): number {
  let count = 0;
  for (let i = 0; i < affected.length; i++) if (affected[i]) count++;
  return K - count;
}

/** Mean binary cross-entropy over all values, probabilities clipped to [ε, 1 − ε]. */
export function meanBce(probabilities: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  if (probabilities.length === 0) return null;
  let sum = 0;
  for (let i = 0; i < probabilities.length; i++) {
    const p = Math.min(1 - LOSS_EPSILON, Math.max(LOSS_EPSILON, probabilities[i]!));
    sum -= labels[i]! === 1 ? Math.log(p) : Math.log(1 - p);
  }
  return sum / probabilities.length;
}

/**
 * All metrics for n volumes. `probabilities` and `labels` are [n, 10]
 * row-major (labels 0/1); a region is predicted affected when p ≥ threshold.
 */
export function computeAspectsMetrics(probabilities: ArrayLike<number>, labels: ArrayLike<number>, threshold = DEFAULT_THRESHOLD): AspectsMetrics {
  if (probabilities.length !== labels.length) throw new RangeError(`${probabilities.length} probabilities but ${labels.length} labels`);
  if (probabilities.length % K !== 0) throw new RangeError(`${probabilities.length} values is not a multiple of ${K} regions`);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new RangeError(`label ${i} is ${labels[i]}, expected 0 or 1`);
  }
  const n = probabilities.length / K;
  let tp = 0, fp = 0, tn = 0, fn = 0;
  const regions: { [region: string]: RegionMetrics } = {};
  const aucs: number[] = [];
  for (let k = 0; k < K; k++) {
    let rtp = 0, rfp = 0, rtn = 0, rfn = 0;
    const scores = new Float64Array(n);
    const truth = new Uint8Array(n);
    for (let s = 0; s < n; s++) {
      const i = s * K + k;
      const predicted = probabilities[i]! >= threshold;
      const actual = labels[i]! === 1;
      scores[s] = probabilities[i]!;
      truth[s] = actual ? 1 : 0;
      if (predicted && actual) rtp++;
      else if (predicted) rfp++;
      else if (actual) rfn++;
      else rtn++;
    }
    tp += rtp; fp += rfp; tn += rtn; fn += rfn;
    const auc = rocAuc(scores, truth);
    if (auc !== null) aucs.push(auc);
    regions[METRIC_REGIONS[k]!] = { sensitivity: ratio(rtp, rtp + rfn), specificity: ratio(rtn, rtn + rfp), auc, positives: rtp + rfn, negatives: rtn + rfp };
  }
  return {
    n,
    loss: meanBce(probabilities, labels),
    accuracy: ratio(tp + tn, n * K),
    macroAuc: aucs.length > 0 ? aucs.reduce((a, b) => a + b, 0) / aucs.length : null,
    classes: { '0': classMetrics(tn, fn, fp), '1': classMetrics(tp, fp, fn) },
    regions,
    aspects: aspectsAgreement(probabilities, labels, threshold),
  };
}

/** Score agreement between predicted and true ASPECTS over the volumes. */
export function aspectsAgreement(probabilities: ArrayLike<number>, labels: ArrayLike<number>, threshold = DEFAULT_THRESHOLD): AspectsAgreement {
  const n = probabilities.length / K;
  if (n === 0) return { meanDifference: null, meanAbsoluteDifference: null, withinOnePercent: null, dichotomyAccuracy: null };
  let diff = 0, absDiff = 0, within = 0, sameSide = 0;
  for (let s = 0; s < n; s++) {
    let predictedAffected = 0, trueAffected = 0;
    for (let k = 0; k < K; k++) {
      if (probabilities[s * K + k]! >= threshold) predictedAffected++;
      if (labels[s * K + k]! === 1) trueAffected++;
    }
    const d = (K - predictedAffected) - (K - trueAffected);
    diff += d;
    absDiff += Math.abs(d);
    if (Math.abs(d) <= 1) within++;
    if ((K - predictedAffected >= ASPECTS_DICHOTOMY) === (K - trueAffected >= ASPECTS_DICHOTOMY)) sameSide++;
  }
  return { meanDifference: diff / n, meanAbsoluteDifference: absDiff / n, withinOnePercent: (100 * within) / n, dichotomyAccuracy: sameSide / n };
}

/** The same metrics as the JSON-friendly type of operator/contracts.ts. */
export function toMetrics(m: AspectsMetrics): Metrics {
  return m as unknown as Metrics;
}
