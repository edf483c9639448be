/** Weights of aspects-region/v3 for the engine-parity tests: every tensor non-trivial, seeded. */
import { initialRegionWeights } from '../../edge-app/aspects/region-spec.js';
import { mulberry32 } from '../../edge-app/random.js';
import type { Tensor, Tensors } from '../../operator/contracts.js';

export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** He-init kernels with small non-zero biases and embeddings, so every tensor is exercised. */
export function testWeights(seed: number): Tensors {
  const out = new Map<string, Tensor>();
  let s = seed * 100;
  for (const [name, t] of initialRegionWeights(seed)) {
    out.set(name, name === 'fc1.weight' || name === 'fc2.weight' ? t : { shape: t.shape, data: randomArray(t.data.length, ++s, -0.2, 0.2) });
  }
  return out;
}
