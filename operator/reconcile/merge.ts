/**
 * The merge of one round, as the aggregator commits it and `fedgit audit` recomputes it: the
 * accepted updates in edge-name order, clipped to the plan's update norm if it sets one, their
 * weights under the plan's bounds, and the strategy's merged tensors. One fold (below) does it for
 * both, whether the updates are read one at a time (`streamMerge`) or already in memory
 * (`computeMerge`), so the two can never drift apart.
 *
 * An averaging strategy (`Strategy.average`) is streamed: its weights follow from the claims
 * alone, each update is added to float64 sums in edge-name order as it is read and then released,
 * so memory is the sums plus one update whatever the number of edges. Without clipping (which
 * needs an update's norm before adding it) a source that can (`UpdateSource.stream`) hands the
 * update over a window at a time, so memory is the sums alone. A strategy that needs every update
 * at once (median, trimmed mean, Krum) is given them all.
 */
import { addWeighted, inEdgeOrder, zeroSums, type Averaging, type MeanTensors, type Strategy, type StrategyState, type Tensors, type Update } from '../contracts.js';
import type { Plan } from '../plan/plan.js';
import type { ClippedEntry } from '../git/names.js';
import { mergeWeights } from './influence.js';
import { claimCounter, type Claim, type Fold, type Merge } from './fold.js';
import { dpFold } from './dp-merge.js';
import { boundUpdate } from './update-norm.js';
import type { OpenValues, ValueSink } from '../store/load-update.js';

export type { Merge } from './fold.js';
export { clipUpdateNorms, updateNorm } from './update-norm.js';

type MergePlan = Pick<Plan, 'edges' | 'maxShare' | 'clip' | 'privacy'>;

/** One accepted update, read only when the merge reaches it; null when it no longer loads (the merge is then abandoned). */
export type UpdateSource = Claim & {
  readonly load: () => Promise<Update | null>;
  /** Reads the update a window at a time (every check included) into the sink `into` opens; false when it no longer loads. */
  readonly stream?: (into: OpenValues) => Promise<boolean>;
};

/**
 * The merge of updates already in memory. `state`: a server optimiser's state in the previous
 * global commit (null: none yet, the first step). `noiseSeed`: the round's noise seed, required
 * when the plan has `privacy` (then the DP merge replaces the strategy's average; the plan admits
 * only fedavg and fedprox with privacy).
 */
export function computeMerge(plan: MergePlan, strategy: Strategy, updates: readonly Update[], previous: Tensors, state: StrategyState | null = null, noiseSeed: Uint8Array | null = null): Merge {
  const ordered = inEdgeOrder(updates);
  const fold = startMerge(plan, strategy, ordered, previous, state, noiseSeed);
  for (const update of ordered) fold.add(update);
  return fold.finish();
}

/**
 * The same merge, reading each update when the fold reaches it, in edge-name order; null when one
 * no longer loads. `readPrevious` is called once; what the fold does not need of the previous
 * model (an averaging strategy without clipping keeps only the tensor names and shapes) is freed
 * before the first update is read.
 */
export async function streamMerge(plan: MergePlan, strategy: Strategy, sources: readonly UpdateSource[], readPrevious: () => Promise<Tensors>, options: StreamOptions = {}): Promise<Merge | null> {
  const ordered = inEdgeOrder(sources);
  // The previous model and each update are handled in helpers that return before the next read:
  // a suspended async function keeps its temporaries alive, which here would be 2× an update.
  const fold = await openFold(readPrevious, (previous) => startMerge(plan, strategy, ordered, previous, options.state ?? null, options.noiseSeed ?? null));
  options.released?.();
  for (const source of ordered) {
    if (!(await addNext(fold, source))) return null;
    options.released?.();
  }
  return fold.finish();
}

export type StreamOptions = {
  /** A server optimiser's state in the previous global commit (null or absent: none yet). */
  readonly state?: StrategyState | null;
  /** The round's noise seed (plans with `privacy`). */
  readonly noiseSeed?: Uint8Array | null;
  /** Called once the fold has what it keeps of the previous model, and after each update is added and dropped (the aggregator frees memory there). */
  readonly released?: () => void;
};

async function openFold(readPrevious: () => Promise<Tensors>, start: (previous: Tensors) => Fold): Promise<Fold> {
  return start(await readPrevious());
}

async function addNext(fold: Fold, source: UpdateSource): Promise<boolean> {
  const open = fold.open;
  if (open && source.stream) return source.stream((shapes) => open(source.edge, shapes));
  const update = await source.load();
  if (update) fold.add(update);
  return update !== null;
}

/** The fold for the plan and strategy; `claims` in edge-name order. */
export function startMerge(plan: MergePlan, strategy: Strategy, claims: readonly Claim[], previous: Tensors, state: StrategyState | null, noiseSeed: Uint8Array | null): Fold {
  if (plan.privacy) {
    if (!noiseSeed) throw new RangeError('a merge under a privacy plan needs the round\'s noise seed');
    return dpFold(plan.edges.length, plan.privacy, claims, previous, noiseSeed);
  }
  return strategy.average ? averagingFold(plan, strategy, strategy.average, claims, previous, state) : holdingFold(plan, strategy, claims, previous, state);
}

const NO_TENSORS: Tensors = new Map();

/** Weights from the claims, then Σ wₖ·updateₖ added update by update; `previous` kept only when clipping or a step needs it. */
function averagingFold(plan: MergePlan, strategy: Strategy, averaging: Averaging, claims: readonly Claim[], previous: Tensors, state: StrategyState | null): Fold {
  const weights = mergeWeights(plan, strategy, claims.map((c) => ({ edge: c.edge, datasetSize: c.datasetSize, tensors: NO_TENSORS })));
  const sums = zeroSums(previous);
  const maxNorm = plan.clip?.maxNorm;
  const kept = maxNorm !== undefined || averaging.kind === 'step' ? previous : null;
  const clipped: ClippedEntry[] = [];
  const counter = claimCounter(claims);
  return {
    add(update) {
      const k = counter.next(update.edge);
      const bounded = maxNorm !== undefined ? boundUpdate(update, kept!, maxNorm) : { update };
      if (bounded.clipped) clipped.push(bounded.clipped);
      addWeighted(sums, bounded.update, weights[k]!);
    },
    open: maxNorm === undefined ? (edge, shapes) => weightedSink(sums, edge, shapes, weights[counter.next(edge)]!) : undefined,
    finish() {
      counter.done();
      const edges = claims.map((c) => c.edge);
      if (averaging.kind === 'mean') return { edges, weights, tensors: roundInPlace(sums), clipped };
      const stepped = averaging.finish(sums, kept!, state);
      return { edges, weights, tensors: stepped.tensors, state: stepped.state, clipped };
    },
  };
}

/**
 * `addWeighted` for an update read in pieces: its tensors are checked against the sums as
 * addWeighted checks them, then sums[name][at + i] += weight · values[i], the same operation on
 * every coordinate, so the merge has the same bytes.
 */
function weightedSink(sums: MeanTensors, edge: string, shapes: ReadonlyMap<string, readonly number[]>, weight: number): ValueSink {
  for (const [name, { data }] of sums) {
    const shape = shapes.get(name);
    if (!shape || shape.reduce((n, d) => n * d, 1) !== data.length) throw new RangeError(`update from ${edge} lacks tensor ${name} of ${data.length} values`);
  }
  return (name, at, values) => {
    const sum = sums.get(name)?.data;
    if (!sum) return;
    for (let i = 0; i < values.length; i++) sum[at + i]! += weight * values[i]!;
  };
}

/**
 * The sums rounded to float32 in their own memory, so the merged model costs no second copy: the
 * float32 values fill the first half of each float64 buffer, written in ascending order, so every
 * float64 is read before anything overwrites its bytes. The same values as `Float32Array.from`.
 */
function roundInPlace(sums: MeanTensors): Tensors {
  return new Map([...sums].map(([name, { shape, data }]) => {
    const out = new Float32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < data.length; i++) out[i] = data[i]!;
    return [name, { shape: [...shape], data: out }];
  }));
}

/** Every (clipped) update kept until the end, then the strategy over all of them. */
function holdingFold(plan: MergePlan, strategy: Strategy, claims: readonly Claim[], previous: Tensors, state: StrategyState | null): Fold {
  const held: Update[] = [];
  const clipped: ClippedEntry[] = [];
  const counter = claimCounter(claims);
  return {
    add(update) {
      counter.next(update.edge);
      const bounded = plan.clip ? boundUpdate(update, previous, plan.clip.maxNorm) : { update };
      if (bounded.clipped) clipped.push(bounded.clipped);
      held.push(bounded.update);
    },
    finish() {
      counter.done();
      const weights = mergeWeights(plan, strategy, held);
      const edges = held.map((u) => u.edge);
      if (!strategy.step) return { edges, weights, tensors: strategy.aggregate(held, previous, weights), clipped };
      const stepped = strategy.step(held, previous, state, weights);
      return { edges, weights, tensors: stepped.tensors, state: stepped.state, clipped };
    },
  };
}
