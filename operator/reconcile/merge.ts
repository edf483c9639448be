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
import { standardNormals } from '../privacy/gaussian-noise.js';

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
  /** A DP merge (plan `privacy`): the average before noise, in float64, and the noise's standard deviation per coordinate. */
  readonly dp?: { readonly noiseFree: ReadonlyMap<string, Float64Array>; readonly noiseStd: number };
};

type MergePlan = Pick<Plan, 'edges' | 'maxShare' | 'clip' | 'privacy'>;

/**
 * `state`: a server optimiser's state in the previous global commit (null: none yet, the first step).
 * `noiseSeed`: the round's noise seed, required when the plan has `privacy` (then the DP merge
 * replaces the strategy's average; the plan admits only fedavg and fedprox with privacy).
 */
export function computeMerge(plan: MergePlan, strategy: Strategy, updates: readonly Update[], previous: Tensors, state: StrategyState | null = null, noiseSeed: Uint8Array | null = null): Merge {
  if (plan.privacy) {
    if (!noiseSeed) throw new RangeError('a merge under a privacy plan needs the round\'s noise seed');
    return dpFedAvgMerge(plan, plan.privacy, updates, previous, noiseSeed);
  }
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

/**
 * DP-FedAvg with the fixed-denominator estimator (McMahan, Ramage, Talwar & Zhang, "Learning
 * Differentially Private Recurrent Language Models", ICLR 2018, Alg. 1 with wₖ = 1): every delta
 * is clipped to L2 norm C = clipNorm, summed, divided by n = the number of edges in the plan (not
 * the number merged, so one hospital more or less moves the average by at most C/n), and
 * N(0, (z·C/n)²) is added per coordinate; all in float64, rounded once to float32. Coordinates
 * take the noise stream in tensor-name order, then index order.
 */
function dpFedAvgMerge(plan: MergePlan, privacy: NonNullable<Plan['privacy']>, updates: readonly Update[], previous: Tensors, noiseSeed: Uint8Array): Merge {
  const ordered = inEdgeOrder(updates);
  const n = plan.edges.length;
  const scales = ordered.map((u) => {
    const norm = updateNorm(u, previous);
    return { norm, scale: norm > privacy.clipNorm ? privacy.clipNorm / norm : 1 };
  });
  const clipped = ordered.flatMap((u, k) => (scales[k]!.scale < 1 ? [{ edge: u.edge, norm: scales[k]!.norm }] : []));
  const names = [...previous.keys()].sort();
  const noiseFree = new Map<string, Float64Array>();
  for (const name of names) {
    const base = previous.get(name)!.data;
    const sum = new Float64Array(base.length);
    ordered.forEach((u, k) => {
      const data = u.tensors.get(name)!.data, scale = scales[k]!.scale;
      for (let i = 0; i < base.length; i++) sum[i]! += (data[i]! - base[i]!) * scale;
    });
    noiseFree.set(name, Float64Array.from(base, (b, i) => b + sum[i]! / n));
  }
  const noiseStd = (privacy.noiseMultiplier * privacy.clipNorm) / n;
  const normals = standardNormals(noiseSeed, names.reduce((sum, name) => sum + previous.get(name)!.data.length, 0));
  const tensors = new Map<string, Tensor>();
  let offset = 0;
  for (const name of names) {
    const average = noiseFree.get(name)!;
    tensors.set(name, { shape: [...previous.get(name)!.shape], data: Float32Array.from(average, (v, i) => v + noiseStd * normals[offset + i]!) });
    offset += average.length;
  }
  const scaledUpdates = ordered.map((u, k) => (scales[k]!.scale < 1 ? { ...u, tensors: scaledDelta(u.tensors, previous, scales[k]!.scale) } : u));
  return { updates: scaledUpdates, weights: ordered.map(() => 1 / n), tensors, clipped, dp: { noiseFree, noiseStd } };
}
