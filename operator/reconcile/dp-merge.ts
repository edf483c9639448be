/**
 * DP-FedAvg with the fixed-denominator estimator (McMahan, Ramage, Talwar & Zhang, "Learning
 * Differentially Private Recurrent Language Models", ICLR 2018, Alg. 1 with wₖ = 1): every delta
 * is clipped to L2 norm C = clipNorm, summed, divided by n = the number of edges in the plan (not
 * the number merged, so one hospital more or less moves the average by at most C/n), and
 * N(0, (z·C/n)²) is added per coordinate; all in float64, rounded once to float32. Coordinates
 * take the noise stream in tensor-name order, then index order. Each update is added to float64
 * sums as it is read, so the merge holds the previous model, the sums and one update.
 */
import type { Tensor, Tensors } from '../contracts.js';
import type { Plan } from '../plan/plan.js';
import type { ClippedEntry } from '../git/names.js';
import { normalStream } from '../privacy/gaussian-noise.js';
import { claimCounter, type Claim, type Fold } from './fold.js';
import { updateNorm } from './update-norm.js';

export function dpFold(edgeCount: number, privacy: NonNullable<Plan['privacy']>, claims: readonly Claim[], previous: Tensors, noiseSeed: Uint8Array): Fold {
  const n = edgeCount;
  const names = [...previous.keys()].sort();
  const sums = new Map(names.map((name) => [name, new Float64Array(previous.get(name)!.data.length)]));
  const clipped: ClippedEntry[] = [];
  const counter = claimCounter(claims);
  return {
    add(update) {
      counter.next(update.edge);
      const norm = updateNorm(update, previous);
      const scale = norm > privacy.clipNorm ? privacy.clipNorm / norm : 1;
      if (scale < 1) clipped.push({ edge: update.edge, norm });
      for (const name of names) {
        const base = previous.get(name)!.data, sum = sums.get(name)!, data = update.tensors.get(name)!.data;
        for (let i = 0; i < base.length; i++) sum[i]! += (data[i]! - base[i]!) * scale;
      }
    },
    finish() {
      counter.done();
      const noiseStd = (privacy.noiseMultiplier * privacy.clipNorm) / n;
      const normals = normalStream(noiseSeed);
      const tensors = new Map<string, Tensor>();
      for (const name of names) {
        const base = previous.get(name)!.data, average = sums.get(name)!;
        // In place: the sum becomes the noise-free average (the same float64 values, no second copy).
        for (let i = 0; i < base.length; i++) average[i] = base[i]! + average[i]! / n;
        const noise = normals(average.length);
        tensors.set(name, { shape: [...previous.get(name)!.shape], data: Float32Array.from(average, (v, i) => v + noiseStd * noise[i]!) });
      }
      return { edges: claims.map((c) => c.edge), weights: claims.map(() => 1 / n), tensors, clipped, dp: { noiseFree: sums, noiseStd } };
    },
  };
}
