/**
 * The merge of one round, as the aggregator commits it and `fedgit audit` recomputes it: the
 * accepted updates in edge-name order, their weights under the plan's bounds, and the strategy's
 * merged tensors. Pure; one function so that the two can never drift apart.
 */
import { inEdgeOrder, type Strategy, type StrategyState, type Tensors, type Update } from '../contracts.js';
import type { Plan } from '../plan/plan.js';
import { mergeWeights } from './influence.js';

export type Merge = {
  /** The updates in edge-name order. */
  readonly updates: readonly Update[];
  /** Aligned with `updates`; sums to 1. */
  readonly weights: readonly number[];
  readonly tensors: Tensors;
  /** A server optimiser's state after the merge (undefined for a stateless strategy). */
  readonly state?: StrategyState;
};

/** `state`: a server optimiser's state in the previous global commit (null: none yet, the first step). */
export function computeMerge(plan: Pick<Plan, 'edges' | 'maxShare'>, strategy: Strategy, updates: readonly Update[], previous: Tensors, state: StrategyState | null = null): Merge {
  const ordered = inEdgeOrder(updates);
  const weights = mergeWeights(plan, strategy, ordered);
  if (!strategy.step) return { updates: ordered, weights, tensors: strategy.aggregate(ordered, previous, weights) };
  const stepped = strategy.step(ordered, previous, state, weights);
  return { updates: ordered, weights, tensors: stepped.tensors, state: stepped.state };
}
