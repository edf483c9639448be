/** Checks a local model before it may be merged: names, shapes, finite values, sane dataset size. */
import type { Tensors, TensorSpec } from '../contracts.js';
import { escapeUntrusted } from '../text/untrusted.js';

export const MAX_DATASET_SIZE = 1_000_000_000;

/** Names in reasons are what the edge wrote: escaped and bounded (they end up in commits and logs). */
const quoted = (name: string) => escapeUntrusted(name, 80);

/** The reason the update is unacceptable, or null when it is fine. */
export function updateProblem(tensors: Tensors, spec: readonly TensorSpec[], datasetSize: number): string | null {
  const shapes = new Map([...tensors].map(([name, t]) => [name, t.shape]));
  return shapedUpdateProblem(shapes, spec, datasetSize, (name) => firstNonFinite(tensors.get(name)!.data));
}

/**
 * The same checks over what a reader learns of an update in pieces: its tensors' shapes in file
 * order, and where each tensor's first non-finite value is (-1: none; asked only when needed).
 */
export function shapedUpdateProblem(shapes: ReadonlyMap<string, readonly number[]>, spec: readonly TensorSpec[], datasetSize: number, nonFiniteAt: (name: string) => number): string | null {
  if (!Number.isSafeInteger(datasetSize) || datasetSize < 1 || datasetSize > MAX_DATASET_SIZE) return `dataset size ${datasetSize} is not an integer in 1..${MAX_DATASET_SIZE}`;
  const expected = new Map(spec.map((s) => [s.name, s.shape]));
  for (const name of shapes.keys()) if (!expected.has(name)) return `unexpected tensor ${quoted(name)}`;
  for (const [name, shape] of expected) {
    const actual = shapes.get(name);
    if (!actual) return `missing tensor ${name}`;
    if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) return `tensor ${name} has shape [${actual.join(',')}], expected [${shape.join(',')}]`;
    const at = nonFiniteAt(name);
    if (at >= 0) return `tensor ${name} holds a non-finite value at index ${at}`;
  }
  return null;
}

/** The index of the first NaN or infinity, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
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
