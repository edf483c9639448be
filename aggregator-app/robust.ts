/**
 * Byzantine-robust aggregation, coordinate by coordinate (Yin, Chen, Ramchandran
 * and Bartlett, "Byzantine-Robust Distributed Learning: Towards Optimal
 * Statistical Rates", ICML 2018):
 *
 * - `median`: each parameter is the median of the edges' values (for an even
 *   count, the mean of the two middle values). Robust while fewer than half the
 *   edges are Byzantine; at half or more it follows them (the published
 *   breakdown point).
 * - `trimmed-mean`: each parameter drops the ⌊β·n⌋ largest and ⌊β·n⌋ smallest
 *   values and averages the rest; β is the plan's `options.beta`, 0 ≤ β < 0.5,
 *   default TRIM_FRACTION. Robust while the Byzantine edges are at most ⌊β·n⌋
 *   (its breakdown point is ⌊β·n⌋/n, below β); with n < 1/β nothing is trimmed
 *   and it is FedAvg without dataset-size weights; β = 0 is that mean always.
 *
 * Both ignore dataset sizes: a weight by declared size would hand an attacker
 * the lever these rules take away. Each edge is reported with weight 1/n. The
 * values of one parameter are sorted before anything is summed (in float64), so
 * the result does not depend on the order of the updates and `fedgit audit`
 * recomputes it bit for bit.
 */
import type { Strategy, Tensor, Tensors, Update } from '../sdk/index.js';

/** β of the trimmed mean: the share dropped at each end (Flower's FedTrimmedAvg uses the same default). */
export const TRIM_FRACTION = 0.2;

export function equalWeights(updates: readonly Update[]): number[] {
  if (updates.length === 0) throw new RangeError('a robust aggregate needs at least one update');
  return updates.map(() => 1 / updates.length);
}

/** Applies `reduce` to the ascending values of every parameter across the updates. */
function coordinatewise(updates: readonly Update[], previous: Tensors, reduce: (sorted: Float64Array) => number): Tensors {
  if (updates.length === 0) throw new RangeError('a robust aggregate needs at least one update');
  const merged = new Map<string, Tensor>();
  const column = new Float64Array(updates.length);
  for (const [name, reference] of previous) {
    const sources = updates.map((u) => {
      const data = u.tensors.get(name)?.data;
      if (!data || data.length !== reference.data.length) throw new RangeError(`update from ${u.edge} lacks tensor ${name} of ${reference.data.length} values`);
      return data;
    });
    const out = new Float32Array(reference.data.length);
    for (let i = 0; i < out.length; i++) {
      for (let k = 0; k < sources.length; k++) column[k] = sources[k]![i]!;
      out[i] = reduce(column.sort());
    }
    merged.set(name, { shape: [...reference.shape], data: out });
  }
  return merged;
}

export function median(sorted: Float64Array): number {
  const n = sorted.length, mid = n >> 1;
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function trimmedMean(sorted: Float64Array, beta = TRIM_FRACTION): number {
  const cut = Math.floor(beta * sorted.length);
  let sum = 0;
  for (let k = cut; k < sorted.length - cut; k++) sum += sorted[k]!;
  return sum / (sorted.length - 2 * cut);
}

export const medianStrategy: Strategy = {
  name: 'median',
  aggregate: (updates, previous) => coordinatewise(updates, previous, median),
  weights: equalWeights,
};

/** The trimmed mean dropping ⌊β·n⌋ values at each end of every parameter. */
export function trimmedMeanWith(beta: number): Strategy {
  if (!(beta >= 0 && beta < 0.5)) throw new RangeError(`the trimmed mean's β must be in [0, 0.5), got ${beta}`);
  return {
    name: 'trimmed-mean',
    aggregate: (updates, previous) => coordinatewise(updates, previous, (sorted) => trimmedMean(sorted, beta)),
    weights: equalWeights,
  };
}

export const trimmedMeanStrategy: Strategy = trimmedMeanWith(TRIM_FRACTION);
