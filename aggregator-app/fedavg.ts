/**
 * FedAvg (McMahan et al., 2017): the average of the local models weighted by
 * dataset size. Updates are taken in edge-name order and accumulated in
 * float64, so the same inputs give the same bytes on any machine — which is
 * what lets `fedgit audit` recompute a merge bit for bit.
 */
import { addWeighted, inEdgeOrder, zeroSums, type MeanTensors, type Strategy, type Tensor, type Tensors, type Update } from '../sdk/index.js';

export function fedAvgWeights(updates: readonly Update[]): number[] {
  const total = updates.reduce((sum, u) => sum + u.datasetSize, 0);
  if (!(total > 0)) throw new RangeError('FedAvg needs at least one update with a positive dataset size');
  return updates.map((u) => u.datasetSize / total);
}

/**
 * The weighted mean of every tensor of `previous` over the updates, in float64 (before rounding):
 * edge-name order, weights by dataset size unless `given` (aligned with `updates`).
 */
export function fedAvgFloat64(updates: readonly Update[], previous: Tensors, given?: readonly number[]): MeanTensors {
  if (updates.length === 0) throw new RangeError('FedAvg needs at least one update');
  if (given && given.length !== updates.length) throw new RangeError(`FedAvg got ${given.length} weights for ${updates.length} updates`);
  const weightOf = new Map(updates.map((u, i) => [u, given?.[i]]));
  const ordered = inEdgeOrder(updates);
  const weights = given ? ordered.map((u) => weightOf.get(u)!) : fedAvgWeights(ordered);
  const sums = zeroSums(previous);
  ordered.forEach((update, k) => addWeighted(sums, update, weights[k]!));
  return sums;
}

/** The mean rounded once to float32. */
export function roundedMean(mean: MeanTensors): Tensors {
  const merged = new Map<string, Tensor>();
  for (const [name, { shape, data }] of mean) merged.set(name, { shape: [...shape], data: Float32Array.from(data) });
  return merged;
}

export function fedAvg(updates: readonly Update[], previous: Tensors, given?: readonly number[]): Tensors {
  return roundedMean(fedAvgFloat64(updates, previous, given));
}

export const fedAvgStrategy: Strategy = {
  name: 'fedavg',
  aggregate: fedAvg,
  weights: fedAvgWeights,
  average: { kind: 'mean' },
};
