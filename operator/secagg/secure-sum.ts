/**
 * The aggregator's side of secure aggregation, and `fedgit audit`'s: the masked updates summed
 * modulo 2^64 in edge-name order (one at a time), the masks of dropped edges removed with the
 * seeds the survivors revealed, the sum decoded and divided by the total weight: the FedAvg
 * average of the survivors, in float64, rounded once to float32. Pure.
 */
import type { Tensor, Tensors } from '../contracts.js';
import type { WordTensors } from '../checkpoint/safetensors.js';
import { addWords, decodeAt } from './fixed-point.js';
import { maskWords } from './pair-masks.js';
import { coordinateLayout, joinWords, maskSign } from './masked-update.js';

export type MaskedInput = { readonly edge: string; readonly weight: number; readonly masked: WordTensors };
/** A seed a survivor revealed: the one it shares with a dropped edge. */
export type RevealedSeed = { readonly survivor: string; readonly dropped: string; readonly seed: Uint8Array };

/** Σ masked (mod 2^64), minus what each revealed seed added to its survivor's update. */
export function unmaskedSum(previous: Tensors, inputs: readonly MaskedInput[], revealed: readonly RevealedSeed[]): Uint32Array {
  const { names, count } = coordinateLayout(previous);
  const survivors = new Set(inputs.map((u) => u.edge));
  const sum = new Uint32Array(2 * count);
  for (const u of [...inputs].sort((a, b) => (a.edge < b.edge ? -1 : a.edge > b.edge ? 1 : 0))) addWords(sum, joinWords(u.masked, names, count), 1);
  for (const r of revealed) {
    if (!survivors.has(r.survivor)) throw new RangeError(`a seed revealed by ${r.survivor}, which is not among the merged updates`);
    if (survivors.has(r.dropped)) throw new RangeError(`a seed shared with ${r.dropped}, whose update is merged: revealing it would unmask it`);
    addWords(sum, maskWords(r.seed, sum.length), maskSign(r.survivor, r.dropped) === 1 ? -1 : 1);
  }
  return sum;
}

/** previous + Σ / (2^fractionalBits · Σ weights), per coordinate in float64, then float32. */
export function secureAverage(previous: Tensors, inputs: readonly MaskedInput[], revealed: readonly RevealedSeed[], fractionalBits: number): Tensors {
  const total = inputs.reduce((s, u) => s + u.weight, 0);
  if (!(total > 0)) throw new RangeError('secure aggregation needs at least one update with a positive weight');
  const sum = unmaskedSum(previous, inputs, revealed);
  const divisor = 2 ** fractionalBits * total;
  const out = new Map<string, Tensor>();
  let offset = 0;
  for (const name of coordinateLayout(previous).names) {
    const reference = previous.get(name)!;
    const data = new Float32Array(reference.data.length);
    for (let i = 0; i < data.length; i++) data[i] = reference.data[i]! + decodeAt(sum, offset + i) / divisor;
    out.set(name, { shape: [...reference.shape], data });
    offset += reference.data.length;
  }
  return out;
}
