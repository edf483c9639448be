/** Checks a local model before it may be merged: names, shapes, finite values, sane dataset size. */
import type { Tensors, TensorSpec } from '../contracts.js';

export const MAX_DATASET_SIZE = 1_000_000_000;

/** The reason the update is unacceptable, or null when it is fine. */
export function updateProblem(tensors: Tensors, spec: readonly TensorSpec[], datasetSize: number): string | null {
  if (!Number.isSafeInteger(datasetSize) || datasetSize < 1 || datasetSize > MAX_DATASET_SIZE) return `dataset size ${datasetSize} is not an integer in 1..${MAX_DATASET_SIZE}`;
  const expected = new Map(spec.map((s) => [s.name, s.shape]));
  for (const name of tensors.keys()) if (!expected.has(name)) return `unexpected tensor ${name}`;
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) return `missing tensor ${name}`;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) return `tensor ${name} has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return `tensor ${name} holds a non-finite value at index ${i}`;
  }
  return null;
}
