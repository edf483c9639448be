/**
 * A merge in progress (operator/reconcile/merge.ts): the accepted updates go in one at a time, in
 * edge-name order, and the merge comes out. An averaging strategy keeps only its running sums, so
 * each update can be released as soon as it has been added.
 */
import type { StrategyState, Tensors, Update } from '../contracts.js';
import type { ClippedEntry } from '../git/names.js';
import type { ValueSink } from '../store/load-update.js';

export type Merge = {
  /** The merged edges in edge-name order, aligned with `weights`. */
  readonly edges: readonly string[];
  /** Sums to 1. */
  readonly weights: readonly number[];
  readonly tensors: Tensors;
  /** A server optimiser's state after the merge (undefined for a stateless strategy). */
  readonly state?: StrategyState;
  /** The updates whose delta was scaled down to the plan's `clip.maxNorm`, in edge-name order, with their original norms. */
  readonly clipped: readonly ClippedEntry[];
  /** A DP merge (plan `privacy`): the average before noise, in float64, and the noise's standard deviation per coordinate. */
  readonly dp?: { readonly noiseFree: ReadonlyMap<string, Float64Array>; readonly noiseStd: number };
};

/** What a merge knows of an update before its tensors load. */
export type Claim = { readonly edge: string; readonly datasetSize: number };

export type Fold = {
  /** Adds the next update (the next claim's edge); keeps no reference to it unless the strategy needs every update at once. */
  add(update: Update): void;
  /**
   * Present when the fold keeps only running sums (an averaging strategy without clipping): the
   * next update is then added value by value, into the sink opened once its tensors' shapes are
   * known. A fold that took values of an update later refused must be dropped.
   */
  readonly open?: (edge: string, shapes: ReadonlyMap<string, readonly number[]>) => ValueSink;
  finish(): Merge;
};

/** Counts the updates added against the claims, so none is skipped, repeated or taken out of order. */
export function claimCounter(claims: readonly Claim[]): { next(edge: string): number; done(): void } {
  let k = 0;
  return {
    next(edge) {
      const expected = claims[k]?.edge;
      if (edge !== expected) throw new RangeError(`merge expected ${expected === undefined ? 'no more updates' : `the update of ${expected}`}, got one of ${edge}`);
      return k++;
    },
    done() {
      if (k !== claims.length) throw new RangeError(`merge got ${k} of ${claims.length} updates`);
    },
  };
}
