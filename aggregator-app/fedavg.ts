/**
 * FedAvg (McMahan et al., 2017): the average of the local models weighted by
 * dataset size. Updates are taken in edge-name order and accumulated in
 * float64, so the same inputs give the same bytes on any machine — which is
 * what lets `fedgit audit` recompute a merge bit for bit.
 */
import { inEdgeOrder, type Strategy, type Tensor, type Tensors, type Update } from '../sdk/index.js';

export function fedAvgWeights(updates: readonly Update[]): number[] {
  const total = updates.reduce((sum, u) => sum + u.datasetSize, 0);
  if (!(total > 0)) throw new RangeError('FedAvg needs at least one update with a positive dataset size');
  return updates.map((u) => u.datasetSize / total);
}

/**
 * The weighted mean of every tensor of `previous` over the updates, in float64 (before rounding):
 * edge-name order, weights by dataset size unless `given` (aligned with `updates`).
 */
export function fedAvgFloat64(updates: readonly Update[], previous: Tensors, given?: readonly number[]): Map<string, Float64Array> {
  if (updates.length === 0) throw new RangeError('FedAvg needs at least one update');
  if (given && given.length !== updates.length) throw new RangeError(`FedAvg got ${given.length} weights for ${updates.length} updates`);
  const weightOf = new Map(updates.map((u, i) => [u, given?.[i]]));
  const ordered = inEdgeOrder(updates);
  const weights = given ? ordered.map((u) => weightOf.get(u)!) : fedAvgWeights(ordered);
  const sums = new Map<string, Float64Array>();
  for (const [name, reference] of previous) {
    const sum = new Float64Array(reference.data.length);
    ordered.forEach((update, k) => {
      const data = update.tensors.get(name)?.data;
      if (!data || data.length !== sum.length) throw new RangeError(`update from ${update.edge} lacks tensor ${name} of ${sum.length} values`);
      const w = weights[k]!;
      for (let i = 0; i < sum.length; i++) sum[i]! += w * data[i]!;
    });
    sums.set(name, sum);
  }
  return sums;
}

export function fedAvg(updates: readonly Update[], previous: Tensors, given?: readonly number[]): Tensors {
  const merged = new Map<string, Tensor>();
  for (const [name, sum] of fedAvgFloat64(updates, previous, given)) merged.set(name, { shape: [...previous.get(name)!.shape], data: Float32Array.from(sum) });
  return merged;
}

export const fedAvgStrategy: Strategy = {
  name: 'fedavg',
  aggregate: fedAvg,
  weights: fedAvgWeights,
};
