/**
 * Krum and multi-Krum (Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine
 * Learning with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017).
 *
 * Each update is scored by the sum of squared distances (over every parameter,
 * float64) to its n − f − 2 nearest other updates, where f is the number of
 * Byzantine edges the plan assumes; Krum keeps the lowest score, multi-Krum
 * the m lowest and averages them (unweighted). Needs n ≥ 2f + 3. Ties go to
 * the first edge in edge-name order, so the selection — recorded as weight 1/m
 * for the kept updates and 0 for the excluded ones in the merge's trailers — is
 * the same on any machine and `fedgit audit` recomputes it.
 *
 * Published failure mode: updates that are close to each other but far from
 * the honest ones score well; with more than f colluding edges Krum can select
 * one of them.
 */
import type { Strategy, Tensor, Tensors, Update } from '../sdk/index.js';

export type KrumOptions = { readonly f: number; readonly m: number };

export function krumProblem(o: KrumOptions, edgeCount: number): string | undefined {
  if (edgeCount < 2 * o.f + 3) return `Krum with f = ${o.f} needs at least ${2 * o.f + 3} edges (n ≥ 2f + 3); the plan has ${edgeCount}`;
  if (o.m > edgeCount - o.f) return `multi-Krum keeps m = ${o.m} updates, more than the ${edgeCount - o.f} honest ones it can count on (n − f)`;
  return undefined;
}

function squaredDistance(a: Update, b: Update, names: readonly string[]): number {
  let sum = 0;
  for (const name of names) {
    const x = a.tensors.get(name)!.data, y = b.tensors.get(name)!.data;
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      sum += d * d;
    }
  }
  return sum;
}

/** Krum scores, aligned with `updates` (given in edge-name order). */
export function krumScores(updates: readonly Update[], f: number): number[] {
  const names = [...updates[0]!.tensors.keys()].sort();
  const n = updates.length;
  const neighbours = n - f - 2;
  if (neighbours < 1) throw new RangeError(`Krum with f = ${f} needs at least ${2 * f + 3} updates, got ${n}`);
  const distance = updates.map((a, i) => updates.map((b, j) => (i === j ? 0 : j < i ? NaN : squaredDistance(a, b, names))));
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) distance[i]![j] = distance[j]![i]!;
  return distance.map((row, i) => row.filter((_, j) => j !== i).sort((x, y) => x - y).slice(0, neighbours).reduce((s, d) => s + d, 0));
}

/** Indices of the m lowest scores; ties to the lower index (edge-name order). */
export function krumSelection(updates: readonly Update[], o: KrumOptions): number[] {
  const scores = krumScores(updates, o.f);
  return scores.map((score, i) => ({ score, i })).sort((a, b) => a.score - b.score || a.i - b.i).slice(0, o.m).map((s) => s.i).sort((a, b) => a - b);
}

export function krumStrategy(name: string, o: KrumOptions): Strategy {
  const weights = (updates: readonly Update[]): number[] => {
    const kept = new Set(krumSelection(updates, o));
    return updates.map((_, i) => (kept.has(i) ? 1 / kept.size : 0));
  };
  return {
    name,
    weights,
    aggregate(updates, previous) {
      const kept = krumSelection(updates, o).map((i) => updates[i]!);
      const merged = new Map<string, Tensor>();
      for (const [name, reference] of previous) {
        const sum = new Float64Array(reference.data.length);
        for (const u of kept) {
          const data = u.tensors.get(name)?.data;
          if (!data || data.length !== sum.length) throw new RangeError(`update from ${u.edge} lacks tensor ${name} of ${sum.length} values`);
          for (let i = 0; i < sum.length; i++) sum[i]! += data[i]!;
        }
        merged.set(name, { shape: [...reference.shape], data: Float32Array.from(sum, (v) => v / kept.length) });
      }
      return merged as Tensors;
    },
  };
}
