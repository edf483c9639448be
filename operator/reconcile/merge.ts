/**
 * The merge of one round, as the aggregator commits it and `fedgit audit` recomputes it: the
 * accepted updates in edge-name order, clipped to the plan's update norm if it sets one, their
 * weights under the plan's bounds, and the strategy's merged tensors. Pure; one function so that
 * the two can never drift apart.
 */
import { inEdgeOrder, type Strategy, type StrategyState, type Tensor, type Tensors, type Update } from '../contracts.js';
import type { Plan } from '../plan/plan.js';
import type { ClippedEntry } from '../git/names.js';
import { mergeWeights } from './influence.js';

export type Merge = {
  /** The updates in edge-name order, as the strategy saw them (clipped where `clipped` says). */
  readonly updates: readonly Update[];
  /** Aligned with `updates`; sums to 1. */
  readonly weights: readonly number[];
  readonly tensors: Tensors;
  /** A server optimiser's state after the merge (undefined for a stateless strategy). */
  readonly state?: StrategyState;
  /** The updates whose delta was scaled down to the plan's `clip.maxNorm`, in edge-name order, with their original norms. */
  readonly clipped: readonly ClippedEntry[];
};

/** `state`: a server optimiser's state in the previous global commit (null: none yet, the first step). */
export function computeMerge(plan: Pick<Plan, 'edges' | 'maxShare' | 'clip'>, strategy: Strategy, updates: readonly Update[], previous: Tensors, state: StrategyState | null = null): Merge {
  const bounded = plan.clip ? clipUpdateNorms(inEdgeOrder(updates), previous, plan.clip.maxNorm) : { updates: inEdgeOrder(updates), clipped: [] };
  const ordered = bounded.updates;
  const weights = mergeWeights(plan, strategy, ordered);
  if (!strategy.step) return { updates: ordered, weights, tensors: strategy.aggregate(ordered, previous, weights), clipped: bounded.clipped };
  const stepped = strategy.step(ordered, previous, state, weights);
  return { updates: ordered, weights, tensors: stepped.tensors, state: stepped.state, clipped: bounded.clipped };
}

/**
 * ‖local − previous‖₂ over every tensor of `previous`, in float64, tensors in name order (so the
 * sum, and the norm recorded in the merge's trailers, is the same on any machine).
 */
export function updateNorm(update: Update, previous: Tensors): number {
  let sum = 0;
  for (const name of [...previous.keys()].sort()) {
    const base = previous.get(name)!.data;
    const data = update.tensors.get(name)?.data;
    if (!data || data.length !== base.length) throw new RangeError(`update from ${update.edge} lacks tensor ${name} of ${base.length} values`);
    for (let i = 0; i < base.length; i++) {
      const d = data[i]! - base[i]!;
      sum += d * d;
    }
  }
  return Math.sqrt(sum);
}

/**
 * Norm bounding (Sun, Kairouz, Suresh and McMahan, "Can You Really Backdoor Federated Learning?",
 * arXiv:1911.07963, 2019): every update whose delta from `previous` is longer than `maxNorm` is
 * replaced by previous + delta · maxNorm / ‖delta‖ (float64, rounded once to float32); shorter ones
 * pass unchanged. Returns the updates in the order given and the clipped ones with their norms.
 */
export function clipUpdateNorms(updates: readonly Update[], previous: Tensors, maxNorm: number): { updates: Update[]; clipped: ClippedEntry[] } {
  const clipped: ClippedEntry[] = [];
  const out = updates.map((u) => {
    const norm = updateNorm(u, previous);
    if (!(norm > maxNorm)) return u;
    clipped.push({ edge: u.edge, norm });
    return { ...u, tensors: scaledDelta(u.tensors, previous, maxNorm / norm) };
  });
  return { updates: out, clipped };
}

function scaledDelta(tensors: Tensors, previous: Tensors, scale: number): Tensors {
  const scaled = new Map<string, Tensor>();
  for (const [name, reference] of previous) {
    const base = reference.data, data = tensors.get(name)!.data;
    scaled.set(name, { shape: [...reference.shape], data: Float32Array.from(base, (b, i) => b + (data[i]! - b) * scale) });
  }
  return scaled;
}
