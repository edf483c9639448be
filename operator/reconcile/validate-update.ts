/** Checks a local model before it may be merged: names, shapes, finite values, sane dataset size. */
import type { Tensors, TensorSpec } from '../contracts.js';
import { escapeUntrusted } from '../text/untrusted.js';

export const MAX_DATASET_SIZE = 1_000_000_000;

/** Names in reasons are what the edge wrote: escaped and bounded (they end up in commits and logs). */
const quoted = (name: string) => escapeUntrusted(name, 80);

/** The reason the update is unacceptable, or null when it is fine. */
export function updateProblem(tensors: Tensors, spec: readonly TensorSpec[], datasetSize: number): string | null {
  if (!Number.isSafeInteger(datasetSize) || datasetSize < 1 || datasetSize > MAX_DATASET_SIZE) return `dataset size ${datasetSize} is not an integer in 1..${MAX_DATASET_SIZE}`;
  const expected = new Map(spec.map((s) => [s.name, s.shape]));
  for (const name of tensors.keys()) if (!expected.has(name)) return `unexpected tensor ${quoted(name)}`;
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) return `missing tensor ${name}`;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) return `tensor ${name} has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`;
    for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i]!)) return `tensor ${name} holds a non-finite value at index ${i}`;
  }
  return null;
}

/**
 * The most bytes a checkpoint of this spec can take: the float32 data, the 8-byte length and a
 * JSON header (name, shape, offsets per tensor, and fedgit's metadata), with generous slack.
 */
export function maxCheckpointBytes(spec: readonly TensorSpec[]): number {
  const dataBytes = spec.reduce((sum, s) => sum + 4 * s.shape.reduce((n, d) => n * d, 1), 0);
  const headerBytes = spec.reduce((sum, s) => sum + s.name.length + 64 + 24 * s.shape.length, 0);
  return dataBytes + 8 + 2 * headerBytes + 64 * 1024;
}
