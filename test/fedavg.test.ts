import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fedAvg, fedAvgWeights } from '../aggregator-app/fedavg.js';
import type { Tensors, Update } from '../operator/contracts.js';

const tensors = (values: number[]): Tensors => new Map([['w', { shape: [values.length], data: Float32Array.from(values) }]]);
const update = (edge: string, datasetSize: number, values: number[]): Update => ({ edge, datasetSize, tensors: tensors(values) });

test('hand-computed weighted average', () => {
  const merged = fedAvg([update('a', 1, [0, 4]), update('b', 3, [4, 0])], tensors([9, 9]));
  assert.deepEqual([...merged.get('w')!.data], [3, 1]);
  assert.deepEqual(fedAvgWeights([update('a', 1, [0]), update('b', 3, [0])]), [0.25, 0.75]);
});

test('averaging identical updates returns that update', () => {
  const values = [0.1, -2.5, 3.25e-8, 1e30];
  const merged = fedAvg([update('a', 7, values), update('b', 13, values), update('c', 1, values)], tensors([0, 0, 0, 0]));
  assert.deepEqual(merged.get('w')!.data, Float32Array.from(values));
});

test('the result does not depend on the order updates arrive in, and inputs are unchanged', () => {
  const u = [update('c', 5, [0.1, 0.7]), update('a', 3, [0.3, 1e-7]), update('b', 11, [1 / 3, 2 / 3])];
  const snapshot = u.map((x) => Float32Array.from(x.tensors.get('w')!.data));
  const one = fedAvg(u, tensors([0, 0]));
  const other = fedAvg([u[1]!, u[2]!, u[0]!], tensors([0, 0]));
  assert.deepEqual(Buffer.from(one.get('w')!.data.buffer), Buffer.from(other.get('w')!.data.buffer));
  u.forEach((x, i) => assert.deepEqual(x.tensors.get('w')!.data, snapshot[i]));
});

test('refuses updates that lack a tensor or have no data', () => {
  assert.throws(() => fedAvg([], tensors([0])), /at least one update/);
  assert.throws(() => fedAvg([update('a', 1, [1, 2])], tensors([0])), /lacks tensor w/);
  assert.throws(() => fedAvg([update('a', 0, [1])], tensors([0])), /positive dataset size/);
});
