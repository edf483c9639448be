/**
 * The length of an update's delta from the previous global model, and norm bounding (Sun, Kairouz,
 * Suresh and McMahan, "Can You Really Backdoor Federated Learning?", arXiv:1911.07963, 2019).
 */
import type { Tensor, Tensors, Update } from '../contracts.js';
import type { ClippedEntry } from '../git/names.js';

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
 * The update, or — when its delta from `previous` is longer than `maxNorm` — previous + delta ·
 * maxNorm / ‖delta‖ (float64, rounded once to float32) and its original norm.
 */
export function boundUpdate(update: Update, previous: Tensors, maxNorm: number): { update: Update; clipped?: ClippedEntry } {
  const norm = updateNorm(update, previous);
  if (!(norm > maxNorm)) return { update };
  return { update: { ...update, tensors: scaledDelta(update.tensors, previous, maxNorm / norm) }, clipped: { edge: update.edge, norm } };
}

/** `boundUpdate` over a list: the updates in the order given and the clipped ones with their norms. */
export function clipUpdateNorms(updates: readonly Update[], previous: Tensors, maxNorm: number): { updates: Update[]; clipped: ClippedEntry[] } {
  const bounded = updates.map((u) => boundUpdate(u, previous, maxNorm));
  return { updates: bounded.map((b) => b.update), clipped: bounded.flatMap((b) => (b.clipped ? [b.clipped] : [])) };
}

function scaledDelta(tensors: Tensors, previous: Tensors, scale: number): Tensors {
  const scaled = new Map<string, Tensor>();
  for (const [name, reference] of previous) {
    const base = reference.data, data = tensors.get(name)!.data;
    scaled.set(name, { shape: [...reference.shape], data: Float32Array.from(base, (b, i) => b + (data[i]! - b) * scale) });
  }
  return scaled;
}
