/**
 * How much one edge may weigh in a merge. An edge signs its own dataset-size
 * claim, so signing does not stop one edge from claiming a billion samples and
 * becoming the merged model. The plan bounds that: a declared maximum dataset
 * size per edge (claims above it count as the maximum) and a maximum share of
 * any one edge in the merge. Pure: the aggregator and `fedgit audit` compute
 * the same weights from the same claims.
 */
import type { Strategy, Update } from '../contracts.js';
import type { Plan } from '../plan/plan.js';

/** Claims counted at most at the edge's declared `maxDatasetSize`. */
export function boundedClaims(plan: Pick<Plan, 'edges'>, updates: readonly Update[]): Update[] {
  return updates.map((u) => {
    const max = plan.edges.find((e) => e.name === u.edge)?.maxDatasetSize;
    return max !== undefined && u.datasetSize > max ? { ...u, datasetSize: max } : u;
  });
}

/**
 * Caps every weight at `maxShare` and gives what is cut to the others in
 * proportion to their weights (water-filling), so the weights still sum to 1.
 * A cap below 1/n cannot be met: then every edge gets 1/n.
 */
export function capShares(weights: readonly number[], maxShare: number): number[] {
  const n = weights.length;
  if (n === 0) return [];
  if (maxShare * n <= 1) return weights.map(() => 1 / n);
  const capped = new Array<boolean>(n).fill(false);
  for (;;) {
    const cappedCount = capped.filter(Boolean).length;
    const freeTotal = weights.reduce((sum, w, i) => (capped[i] ? sum : sum + w), 0);
    const scale = (1 - maxShare * cappedCount) / freeTotal;
    const over = weights.map((w, i) => !capped[i] && w * scale > maxShare);
    if (!over.some(Boolean)) return weights.map((w, i) => (capped[i] ? maxShare : w * scale));
    over.forEach((o, i) => (capped[i] ||= o));
  }
}

/** The weights a merge gives `updates` (in the order given) under the plan's bounds. */
export function mergeWeights(plan: Pick<Plan, 'edges' | 'maxShare'>, strategy: Strategy, updates: readonly Update[]): number[] {
  const natural = strategy.weights(boundedClaims(plan, updates));
  return plan.maxShare === undefined ? natural : capShares(natural, plan.maxShare);
}

/** One line for audit and logs: which bounds the plan sets. */
export function describeBounds(plan: Pick<Plan, 'edges' | 'maxShare'>): string {
  const declared = plan.edges.filter((e) => e.maxDatasetSize !== undefined).map((e) => `${e.name} ≤ ${e.maxDatasetSize}`);
  const parts = [...(plan.maxShare !== undefined ? [`maxShare ${plan.maxShare}`] : []), ...(declared.length ? [`maxDatasetSize ${declared.join(', ')}`] : [])];
  return parts.length ? parts.join('; ') : 'no bounds';
}
