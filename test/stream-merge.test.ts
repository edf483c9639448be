/**
 * The streamed merge (issue 12): the aggregator reads one update at a time and gets the bytes a
 * strategy computes over all of them at once; strategies that need every update are given them all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamMerge, computeMerge, type Merge, type UpdateSource } from '../operator/reconcile/merge.js';
import { renderSafetensors, parseSafetensors } from '../operator/checkpoint/safetensors.js';
import { normalStream, standardNormals } from '../operator/privacy/gaussian-noise.js';
import { strategies } from '../aggregator-app/registry.js';
import { fedAvg } from '../aggregator-app/fedavg.js';
import type { Strategy, StrategyState, Tensors, Update } from '../operator/contracts.js';

/** Deterministic values of every magnitude, so a change of summation order or rounding shows in the bytes. */
function model(seed: number, scale: number): Tensors {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * scale;
  // Odd lengths, so a DP merge's normals straddle tensors (a pair split between two of them).
  return new Map([
    ['conv', { shape: [3, 5], data: Float32Array.from({ length: 15 }, next) }],
    ['bias', { shape: [7], data: Float32Array.from({ length: 7 }, next) }],
  ]);
}

const PREVIOUS = model(1, 1);
const EDGES = ['hospital-e', 'hospital-a', 'hospital-d', 'hospital-b', 'hospital-c'];
const UPDATES: Update[] = EDGES.map((edge, k) => ({ edge, datasetSize: 10 + 37 * k, tensors: model(100 + k, 1 + k) }));
const PLAN = { edges: EDGES.map((name) => ({ name })) };

const bytes = (t: Tensors) => renderSafetensors(t);

/** Sources over UPDATES that log every read (and every `released` call) in `log`. */
function sources(log: string[], failing?: string): UpdateSource[] {
  return UPDATES.map((u) => ({ edge: u.edge, datasetSize: u.datasetSize, load: async () => (log.push(`load ${u.edge}`), u.edge === failing ? null : u) }));
}

const stream = (strategy: Strategy, plan: object = PLAN, state: StrategyState | null = null, noiseSeed: Uint8Array | null = null): Promise<Merge | null> =>
  streamMerge({ ...PLAN, ...plan }, strategy, sources([]), async () => PREVIOUS, { state, noiseSeed });

test('streamed FedAvg is the strategy\'s aggregate over every update, bit for bit, with dataset-size weights', async () => {
  const streamed = (await stream(strategies.get('fedavg')))!;
  assert.ok(bytes(streamed.tensors).equals(bytes(fedAvg(UPDATES, PREVIOUS))));
  const total = UPDATES.reduce((sum, u) => sum + u.datasetSize, 0);
  assert.deepEqual(streamed.edges, [...EDGES].sort());
  assert.deepEqual(streamed.weights, [...UPDATES].sort((a, b) => (a.edge < b.edge ? -1 : 1)).map((u) => u.datasetSize / total));
});

test('a streamed server optimiser step is its step over every update: weights and state, bit for bit', async () => {
  for (const id of ['fedavgm', 'fedadagrad', 'fedadam', 'fedyogi']) {
    const strategy = strategies.get(id);
    const first = strategy.step!(UPDATES.slice(0, 3), PREVIOUS, null);
    const expected = strategy.step!(UPDATES, PREVIOUS, first.state);
    const streamed = (await stream(strategy, PLAN, first.state))!;
    assert.ok(bytes(streamed.tensors).equals(bytes(expected.tensors)), `${id}: weights`);
    assert.ok(bytes(streamed.state!.tensors).equals(bytes(expected.state.tensors)), `${id}: state`);
    assert.equal(streamed.state!.step, 2);
  }
});

test('streamed merges equal merges of updates in memory under clipping, maxShare and DP', async () => {
  const cases: Array<[string, object]> = [
    ['fedavg', { clip: { maxNorm: 4 } }],
    ['fedadam', { clip: { maxNorm: 4 }, maxShare: 0.3 }],
    ['fedavg', { maxShare: 0.3 }],
    ['fedavg', { privacy: { clipNorm: 4, noiseMultiplier: 0.7, delta: 1e-5 } }],
    ['median', { clip: { maxNorm: 4 } }],
    ['multi-krum', {}],
  ];
  const seed = new Uint8Array(32).fill(7);
  for (const [id, extra] of cases) {
    const strategy = strategies.get(id, id === 'multi-krum' ? { f: 1, m: 2 } : {});
    const plan = { ...PLAN, ...extra } as Parameters<typeof computeMerge>[0];
    const held = computeMerge(plan, strategy, UPDATES, PREVIOUS, null, seed);
    const streamed = (await stream(strategy, plan, null, seed))!;
    const what = `${id} ${JSON.stringify(extra)}`;
    assert.ok(bytes(streamed.tensors).equals(bytes(held.tensors)), what);
    assert.deepEqual(streamed.weights, held.weights, what);
    assert.deepEqual(streamed.clipped, held.clipped, what);
    if ('clip' in extra || 'privacy' in extra) assert.ok(held.clipped.length > 0 && held.clipped.length < EDGES.length, `${what}: some clipped, some not`);
  }
});

test('reads one update at a time, in edge-name order, and frees memory between reads', async () => {
  const log: string[] = [];
  const merge = await streamMerge(PLAN, strategies.get('fedavg'), sources(log), async () => (log.push('previous'), PREVIOUS), { released: () => log.push('released') });
  assert.ok(merge);
  const sorted = [...EDGES].sort();
  assert.deepEqual(log, ['previous', 'released', ...sorted.flatMap((e) => [`load ${e}`, 'released'])]);
});

test('an update that no longer loads abandons the merge and reads nothing after it', async () => {
  const log: string[] = [];
  const merge = await streamMerge(PLAN, strategies.get('fedavg'), sources(log, 'hospital-b'), async () => PREVIOUS);
  assert.equal(merge, null);
  assert.deepEqual(log, ['load hospital-a', 'load hospital-b']);
});

test('a source that hands in another edge\'s update is refused', async () => {
  const wrong: UpdateSource[] = [{ edge: 'hospital-a', datasetSize: 1, load: async () => UPDATES[0]! }];
  await assert.rejects(streamMerge(PLAN, strategies.get('fedavg'), wrong, async () => PREVIOUS), /merge expected the update of hospital-a, got one of hospital-e/);
});

test('the registry declares which strategies stream, and exactly those have an average', () => {
  const options: Record<string, object> = { krum: { f: 1 }, 'multi-krum': { f: 1, m: 2 } };
  const streaming = strategies.ids().filter((id) => strategies.streamsUpdates(id));
  assert.deepEqual(strategies.ids().filter((id) => !strategies.streamsUpdates(id)).sort(), ['krum', 'median', 'multi-krum', 'trimmed-mean']);
  for (const id of strategies.ids()) assert.equal(strategies.get(id, options[id]).average !== undefined, streaming.includes(id), id);
});

test('the noise stream drawn in parts is the whole draw', () => {
  const seed = new Uint8Array(32).fill(3);
  const whole = standardNormals(seed, 23);
  const draw = normalStream(seed);
  const parts = [7, 0, 1, 15].map((n) => [...draw(n)]);
  assert.deepEqual(parts.flat(), [...whole]);
});

test('a checkpoint parses to views on its bytes when aligned, and to equal copies when not', () => {
  const rendered = renderSafetensors(PREVIOUS);
  const aligned = parseSafetensors(rendered).tensors.get('conv')!.data;
  assert.equal(aligned.buffer, rendered.buffer);
  const shifted = Buffer.alloc(rendered.length + 1);
  rendered.copy(shifted, 1);
  const misaligned = parseSafetensors(shifted.subarray(1)).tensors.get('conv')!.data;
  assert.notEqual(misaligned.buffer, shifted.buffer);
  assert.deepEqual(misaligned, aligned);
});
