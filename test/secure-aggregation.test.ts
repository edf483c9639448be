/** Secure aggregation's pure parts: fixed point, pair seeds, masks that cancel, recovery, plan refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addWords, decodeAt, encodeInto, MAX_ENCODED } from '../operator/secagg/fixed-point.js';
import { pairSeed } from '../operator/secagg/pair-masks.js';
import { maskUpdate, joinWords, coordinateLayout } from '../operator/secagg/masked-update.js';
import { secureAverage } from '../operator/secagg/secure-sum.js';
import { generateAgreementKeyPair, parseAgreementKey, parseAgreementPrivateKey } from '../operator/secagg/agreement-keys.js';
import { parseSafetensors, parseWordSafetensors, renderWordSafetensors } from '../operator/checkpoint/safetensors.js';
import { fedAvg } from '../aggregator-app/fedavg.js';
import { parsePlan } from '../operator/plan/plan.js';
import { builtinRegistries } from '../bin/registries.js';
import { mulberry32 } from '../edge-app/random.js';
import { computeSecureMerge } from '../operator/secagg/secure-merge.js';
import { CheckpointCorrupt, PlanInvalid } from '../operator/errors.js';
import type { Tensors } from '../operator/contracts.js';

const F = 20;
const PLAN_ID = 'a'.repeat(40);

test('fixed point: values round-trip to 2^-(f+1), negatives included, and sums carry across the 32-bit words', () => {
  const values = [0, 1.5, -1.5, 3e-7, -123456.789, 2 ** 20 + 0.25, -(2 ** 22)];
  const words = new Uint32Array(2 * values.length);
  assert.equal(encodeInto(words, 0, values, 2 ** F), 0);
  values.forEach((v, i) => assert.ok(Math.abs(decodeAt(words, i) / 2 ** F - v) <= 2 ** -(F + 1), `${v}`));
  const acc = new Uint32Array(2 * values.length);
  addWords(acc, words, 1);
  addWords(acc, words, 1);
  addWords(acc, words, -1);
  assert.deepEqual([...acc], [...words]);
  const clipped = new Uint32Array(4);
  assert.equal(encodeInto(clipped, 0, [1e30, -1e30], 1), 2);
  assert.equal(decodeAt(clipped, 0), MAX_ENCODED);
  assert.equal(decodeAt(clipped, 1), -MAX_ENCODED);
});

const keys = Object.fromEntries(['a', 'b', 'c'].map((e) => {
  const pair = generateAgreementKeyPair();
  return [e, { public: parseAgreementKey(pair.publicKey), private: parseAgreementPrivateKey(pair.privateKeyPem) }];
}));
const seedOf = (self: string, peer: string, round = 1) => pairSeed(keys[self]!.private, keys[peer]!.public, { planId: PLAN_ID, round, self, peer });

test('pair seeds: the same from either side, different per round and per pair', () => {
  assert.deepEqual(seedOf('a', 'b'), seedOf('b', 'a'));
  assert.notDeepEqual(seedOf('a', 'b', 1), seedOf('a', 'b', 2));
  assert.notDeepEqual(seedOf('a', 'b'), seedOf('a', 'c'));
});

function model(seed: number, n: number, scale = 0.01): Tensors {
  const random = mulberry32(seed);
  return new Map([
    ['b', { shape: [3], data: Float32Array.from({ length: 3 }, () => (random() - 0.5) * scale) }],
    ['w', { shape: [n], data: Float32Array.from({ length: n }, () => (random() - 0.5) * scale) }],
  ]);
}

const sizes: Record<string, number> = { a: 120, b: 45, c: 300 };
/** Enough values that |r| < 0.01 is a 5σ bound for independent data (σ ≈ 1/√N = 0.002). */
const N = 250_000;
const previous = model(1, N, 1);
const locals = Object.fromEntries(['a', 'b', 'c'].map((e, k) => {
  const delta = model(10 + k, N);
  return [e, new Map([...previous].map(([name, t]) => [name, { shape: t.shape, data: Float32Array.from(t.data, (v, i) => v + delta.get(name)!.data[i]!) }]))];
}));
const masked = (edge: string) => {
  const seeds = Object.keys(keys).filter((p) => p !== edge).map((peer) => ({ peer, seed: seedOf(edge, peer) }));
  return maskUpdate({ edge, tensors: locals[edge]!, previous, weight: sizes[edge]!, fractionalBits: F, seeds }).masked;
};

function correlation(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) (mx += x[i]!), (my += y[i]!);
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx, dy = y[i]! - my;
    sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy);
}

test('a masked update is uncorrelated with the true update (|r| < 0.01 over 250,003 values), and the unmasked one is', () => {
  const { names, count } = coordinateLayout(previous);
  for (const edge of ['a', 'b', 'c']) {
    const words = joinWords(masked(edge), names, count);
    const truth = names.flatMap((name) => [...locals[edge]!.get(name)!.data].map((v, i) => v - previous.get(name)!.data[i]!));
    const pushed = Array.from({ length: count }, (_, i) => decodeAt(words, i));
    const r = correlation(pushed, truth);
    assert.ok(Math.abs(r) < 0.01, `${edge}: correlation ${r}`);
    const plain = maskUpdate({ edge, tensors: locals[edge]!, previous, weight: sizes[edge]!, fractionalBits: F, seeds: [] }).masked;
    const plainWords = joinWords(plain, names, count);
    assert.ok(correlation(Array.from({ length: count }, (_, i) => decodeAt(plainWords, i)), truth) > 0.999, 'the measure can fail: without masks the correlation is ~1');
  }
});

function maxDifference(x: Tensors, y: Tensors): number {
  let worst = 0;
  for (const [name, t] of x) t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - y.get(name)!.data[i]!))));
  return worst;
}

const updateOf = (edge: string) => ({ edge, datasetSize: sizes[edge]!, tensors: locals[edge]! });

test('the masks cancel: the secure average equals FedAvg within the fixed-point resolution (and float32 rounding)', () => {
  const inputs = ['a', 'b', 'c'].map((edge) => ({ edge, weight: sizes[edge]!, masked: masked(edge) }));
  const secure = secureAverage(previous, inputs, [], F);
  const plain = fedAvg(['a', 'b', 'c'].map(updateOf), previous);
  const bound = 2 ** -(F + 1) * 3 / 465 + 2 ** -23 * 2;
  assert.ok(maxDifference(secure, plain) <= bound, `${maxDifference(secure, plain)} > ${bound}`);
  const missingOne = secureAverage(previous, inputs.slice(0, 2), [], F);
  assert.ok(maxDifference(missingOne, plain) > 1, 'without c, its masks do not cancel: garbage');
});

test('recovery: with the seeds the survivors share with a dropped edge, the survivors\' average is exact; a tampered seed breaks it', () => {
  const inputs = ['a', 'b'].map((edge) => ({ edge, weight: sizes[edge]!, masked: masked(edge) }));
  const revealed = [{ survivor: 'a', dropped: 'c', seed: seedOf('a', 'c') }, { survivor: 'b', dropped: 'c', seed: seedOf('b', 'c') }];
  const secure = secureAverage(previous, inputs, revealed, F);
  const plain = fedAvg(['a', 'b'].map(updateOf), previous);
  assert.ok(maxDifference(secure, plain) <= 2 ** -(F + 1) * 2 / 165 + 2 ** -23 * 2);
  const tampered = [revealed[0]!, { ...revealed[1]!, seed: Uint8Array.from(revealed[1]!.seed, (v, i) => (i === 0 ? v ^ 1 : v)) }];
  assert.ok(maxDifference(secureAverage(previous, inputs, tampered, F), plain) > 1);
  assert.throws(() => secureAverage(previous, inputs, [{ survivor: 'a', dropped: 'b', seed: seedOf('a', 'b') }], F), /would unmask it/);
});

test('U64 checkpoints round-trip; an F32 reader refuses one and a U64 reader refuses F32, each naming the dtype', () => {
  const m = masked('a');
  const bytes = renderWordSafetensors(m, { 'fedgit.round': '1' });
  const back = parseWordSafetensors(bytes, 'm.safetensors');
  assert.deepEqual([...back.tensors.get('w')!.words], [...m.get('w')!.words]);
  assert.throws(() => parseSafetensors(bytes, 'm.safetensors'), (e: unknown) => e instanceof CheckpointCorrupt && /dtype "U64" is not F32/.test(e.message));
});

const securePlan = (edges: string, extra = '') => `name: toy
rounds: 2
edges:
${edges}
minEdges: 2
seed: 1
secureAggregation: { fractionalBits: 20 }
app: { id: linear-toy, options: { features: 4 } }
${extra}`;

test('plans: incompatible strategies and options, and missing or malformed agreement keys, are refused naming the line', () => {
  const [ka, kb] = [generateAgreementKeyPair().publicKey, generateAgreementKeyPair().publicKey];
  const edges = `  - { name: a, agreementKey: '${ka}' }\n  - { name: b, agreementKey: '${kb}' }`;
  const checks = { apps: builtinRegistries.apps, strategies: builtinRegistries.strategies };
  assert.equal(parsePlan(securePlan(edges), 'plan.yaml', checks).secureAggregation?.fractionalBits, 20);
  const cases: Array<[string, RegExp]> = [
    [securePlan(edges, 'strategy: median\n'), /^plan\.yaml:10: strategy: median cannot be combined with secureAggregation/],
    [securePlan(edges, 'strategy: { id: krum, options: { f: 0 } }\n'), /plan\.yaml:10: strategy: krum cannot be combined with secureAggregation/],
    [securePlan(edges, 'clip: { maxNorm: 1 }\n'), /plan\.yaml:10: clip: cannot be combined with secureAggregation/],
    [securePlan(edges, 'maxShare: 0.6\n'), /plan\.yaml:10: maxShare: cannot be combined/],
    [securePlan(`  - { name: a, agreementKey: '${ka}' }\n  - b`), /plan\.yaml:5: edges\[1\]: edge 'b' has no agreementKey/],
    [securePlan(`  - { name: a, agreementKey: '${ka}' }\n  - { name: b, agreementKey: 'x25519:nope' }`), /plan\.yaml:5: edges\[1\]\.agreementKey: must be an X25519 public key/],
    [securePlan(`  - { name: a, agreementKey: '${ka}' }\n  - { name: b, agreementKey: '${ka}' }`), /edges\[1\]\.agreementKey: is the same key as edge 'a' has/],
    [securePlan(edges).replace('minEdges: 2', 'minEdges: 1'), /plan\.yaml:6: minEdges: must be at least 2 with secureAggregation/],
  ];
  for (const [yaml, message] of cases) {
    assert.throws(() => parsePlan(yaml, 'plan.yaml', checks), (e: unknown) => e instanceof PlanInvalid && message.test(e.message), `${message}`);
  }
  for (const strategy of ['fedavg', 'fedprox', 'fedavgm', 'fedadam', 'fedyogi', 'fedadagrad']) assert.ok(parsePlan(securePlan(edges, `strategy: ${strategy}\n`), 'plan.yaml', checks));
});

test('a server optimiser steps from the secure average as from FedAvg\'s (FedAvgM, η = 0.5, β = 0.5, two steps)', () => {
  const strategy = builtinRegistries.strategies.get('fedavgm', { eta: 0.5, beta: 0.5 });
  const maskedUpdates = ['a', 'b', 'c'].map((edge) => ({ edge, datasetSize: sizes[edge]!, masked: masked(edge) }));
  const plan = { edges: ['a', 'b', 'c'].map((name) => ({ name })), secureAggregation: { fractionalBits: F } };
  const secure1 = computeSecureMerge(plan, strategy, maskedUpdates, [], previous, null);
  const plain1 = strategy.step!(['a', 'b', 'c'].map(updateOf), previous, null);
  assert.ok(maxDifference(secure1.tensors, plain1.tensors) <= 2 ** -(F + 1) * 3 / 465 + 2 ** -22);
  assert.equal(secure1.state!.step, 1);
  assert.deepEqual(secure1.weights, [120 / 465, 45 / 465, 300 / 465]);
  const secure2 = computeSecureMerge(plan, strategy, maskedUpdates, [], previous, secure1.state!);
  const plain2 = strategy.step!(['a', 'b', 'c'].map(updateOf), previous, plain1.state);
  assert.ok(maxDifference(secure2.tensors, plain2.tensors) <= 2 ** -(F + 1) * 6 / 465 + 2 ** -21);
});
