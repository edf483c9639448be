/**
 * What an edge pushes under secure aggregation: its weighted delta n·(x − global) in fixed point,
 * plus the mask of every pair it belongs to — added when its name sorts before the peer's,
 * subtracted otherwise — so that in the sum over all edges every mask meets its negative.
 * Coordinates run over the tensors in name order, then index order. Pure.
 */
import type { Tensors } from '../contracts.js';
import type { WordTensor, WordTensors } from '../checkpoint/safetensors.js';
import { addWords, encodeInto } from './fixed-point.js';
import { maskWords } from './pair-masks.js';

export type PairSeed = { readonly peer: string; readonly seed: Uint8Array };

export type MaskInput = {
  readonly edge: string;
  readonly tensors: Tensors;
  readonly previous: Tensors;
  /** The edge's dataset size as the merge counts it (its claim, bounded by the plan's maxDatasetSize). */
  readonly weight: number;
  readonly fractionalBits: number;
  /** One seed per other edge of the plan. */
  readonly seeds: readonly PairSeed[];
};

/** Tensor names in the order their coordinates take the mask stream, and the total count. */
export function coordinateLayout(previous: Tensors): { names: string[]; count: number } {
  const names = [...previous.keys()].sort();
  return { names, count: names.reduce((n, name) => n + previous.get(name)!.data.length, 0) };
}

/** +1 when `edge` adds the pair's mask, −1 when it subtracts it. */
export const maskSign = (edge: string, peer: string): 1 | -1 => (edge < peer ? 1 : -1);

export function maskUpdate(input: MaskInput): { masked: WordTensors; clipped: number } {
  const { names, count } = coordinateLayout(input.previous);
  const words = new Uint32Array(2 * count);
  const scale = input.weight * 2 ** input.fractionalBits;
  let offset = 0, clipped = 0;
  for (const name of names) {
    const base = input.previous.get(name)!.data;
    const data = input.tensors.get(name)?.data;
    if (!data || data.length !== base.length) throw new RangeError(`the update lacks tensor ${name} of ${base.length} values`);
    const delta = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) delta[i] = data[i]! - base[i]!;
    clipped += encodeInto(words, offset, delta, scale);
    offset += base.length;
  }
  for (const { peer, seed } of input.seeds) {
    if (peer === input.edge) throw new RangeError('an edge has no pair seed with itself');
    addWords(words, maskWords(seed, words.length), maskSign(input.edge, peer));
  }
  return { masked: splitWords(words, names, input.previous), clipped };
}

/** The flat word vector as named tensors (views, no copy). */
export function splitWords(words: Uint32Array, names: readonly string[], previous: Tensors): WordTensors {
  const out = new Map<string, WordTensor>();
  let offset = 0;
  for (const name of names) {
    const reference = previous.get(name)!;
    out.set(name, { shape: [...reference.shape], words: words.subarray(2 * offset, 2 * (offset + reference.data.length)) });
    offset += reference.data.length;
  }
  return out;
}

/** The named tensors as one flat word vector in coordinate order. */
export function joinWords(tensors: WordTensors, names: readonly string[], count: number): Uint32Array {
  const words = new Uint32Array(2 * count);
  let at = 0;
  for (const name of names) {
    const t = tensors.get(name);
    if (!t) throw new RangeError(`the masked update lacks tensor ${name}`);
    words.set(t.words, at);
    at += t.words.length;
  }
  if (at !== words.length) throw new RangeError(`the masked update holds ${at / 2} values, the model ${count}`);
  return words;
}
