/**
 * The merge of one round, as the aggregator commits it and `fedgit audit` recomputes it: the
 * accepted updates in edge-name order, their weights under the plan's bounds, and the strategy's
 * merged tensors. Pure; one function so that the two can never drift apart.
 */
import { inEdgeOrder, type Strategy, type Tensors, type Update } from '../contracts.js';
import type { Plan } from '../plan/plan.js';
import { mergeWeights } from './influence.js';

export type Merge = {
  /** The updates in edge-name order. */
  readonly updates: readonly Update[];
  /** Aligned with `updates`; sums to 1. */
  readonly weights: readonly number[];
  readonly tensors: Tensors;
};

export function computeMerge(plan: Pick<Plan, 'edges' | 'maxShare'>, strategy: Strategy, updates: readonly Update[], previous: Tensors): Merge {
  const ordered = inEdgeOrder(updates);
  const weights = mergeWeights(plan, strategy, ordered);
  return { updates: ordered, weights, tensors: strategy.aggregate(ordered, previous, weights) };
}
