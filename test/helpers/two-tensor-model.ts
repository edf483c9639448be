/** A model of two tensors, `b` (one value) and `w` (two), so a norm runs over more than one tensor: for merge tests by hand. */
import type { Tensors, Update } from '../../operator/contracts.js';

export const model = (b: number, w: [number, number]): Tensors => new Map([
  ['w', { shape: [2], data: Float32Array.from(w) }],
  ['b', { shape: [1], data: Float32Array.from([b]) }],
]);
export const update = (edge: string, datasetSize: number, tensors: Tensors): Update => ({ edge, datasetSize, tensors });
export const values = (t: Tensors) => ({ b: [...t.get('b')!.data], w: [...t.get('w')!.data] });
