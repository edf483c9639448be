/**
 * A secure merge, as the aggregator commits it and `fedgit audit` recomputes it: the survivors'
 * masked updates summed and unmasked into the dataset-size-weighted average, then the plan's
 * strategy applied to that average as if it were one update (FedAvg and FedProx return it, the
 * server optimisers take their step from it). Pure; one function so the two cannot drift apart.
 */
import type { Strategy, StrategyState, Tensors } from '../contracts.js';
import type { Plan } from '../plan/plan.js';
import { boundedClaims } from '../reconcile/influence.js';
import { secureAverage, type RevealedSeed } from './secure-sum.js';
import type { MaskedUpdate } from './load-masked.js';

export type SecureMerge = {
  /** Aligned with the updates in edge-name order; sums to 1. */
  readonly weights: readonly number[];
  readonly tensors: Tensors;
  readonly state?: StrategyState;
};

/** The weight each edge gave its own update before masking: its claim, bounded by the plan's maxDatasetSize. */
export function maskingWeight(plan: Pick<Plan, 'edges'>, edge: string, datasetSize: number): number {
  return boundedClaims(plan, [{ edge, datasetSize, tensors: new Map() }])[0]!.datasetSize;
}

export function computeSecureMerge(
  plan: Pick<Plan, 'edges' | 'secureAggregation'>, strategy: Strategy, updates: readonly MaskedUpdate[], revealed: readonly RevealedSeed[], previous: Tensors, state: StrategyState | null,
): SecureMerge {
  const fractionalBits = plan.secureAggregation!.fractionalBits;
  const ordered = [...updates].sort((a, b) => (a.edge < b.edge ? -1 : a.edge > b.edge ? 1 : 0));
  const inputs = ordered.map((u) => ({ edge: u.edge, weight: maskingWeight(plan, u.edge, u.datasetSize), masked: u.masked }));
  const total = inputs.reduce((s, u) => s + u.weight, 0);
  const average = secureAverage(previous, inputs, revealed, fractionalBits);
  const sum = [{ edge: 'secure-sum', datasetSize: total, tensors: average }];
  const weights = inputs.map((u) => u.weight / total);
  if (!strategy.step) return { weights, tensors: strategy.aggregate(sum, previous, [1]) };
  const stepped = strategy.step(sum, previous, state, [1]);
  return { weights, tensors: stepped.tensors, state: stepped.state };
}
