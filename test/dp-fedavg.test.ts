/**
 * DP-FedAvg's merge (operator/reconcile/merge.ts, McMahan et al., ICLR 2018) by hand on a tiny
 * case with a given seed; the noise stream recomputed from its specification; determinism and
 * independence of the update order; ε rounded up; the seedless check's χ² bounds; and the plan's
 * refusals, each naming its line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { computeMerge } from '../operator/reconcile/merge.js';
import { fedAvgStrategy } from '../aggregator-app/fedavg.js';
import { parsePlan } from '../operator/plan/plan.js';
import { PlanInvalid } from '../operator/errors.js';
import { builtinRegistries } from '../bin/registries.js';
import { deriveNoiseSeed, noiseCommitment, standardNormals } from '../operator/privacy/gaussian-noise.js';
import { privacyTrailerValues, roundUpSignificant } from '../operator/privacy/accounting.js';
import { epsilonAfter } from '../operator/privacy/rdp-accountant.js';
import { chiSquareBounds } from '../operator/commands/audit.js';
import { toyPlan } from './helpers/temp.js';
import { model, update, values } from './helpers/two-tensor-model.js';

// Previous: b = 0, w = [1, 2]. x moves by (12; 3, 4), norm 13; y by (1; 0, 1), norm √2. The plan has 3 edges; z is missing.
const PREVIOUS = model(0, [1, 2]);
const X = update('x', 1, model(12, [4, 6]));
const Y = update('y', 1000, model(1, [1, 3]));
const SEED = createHash('sha256').update('a test seed').digest();
const PRIVACY = { targetEpsilon: 50, delta: 1e-5, noiseMultiplier: 0.6, clipNorm: 6.5, samplingRate: 1, conversion: 'balle2020' as const };
const PLAN = { edges: [{ name: 'x' }, { name: 'y' }, { name: 'z' }], privacy: PRIVACY };

/** The first two normals of the stream, straight from the specification in gaussian-noise.ts. */
function firstTwoNormalsBySpec(seed: Uint8Array): [number, number] {
  const block0 = createHash('sha256').update(seed).update('fedgit-dp-noise/v1').update(Buffer.alloc(8)).digest();
  const u = (w: number) => (Number(block0.readBigUInt64BE(w * 8) >> 11n) + 1) / 2 ** 53;
  const radius = Math.sqrt(-2 * Math.log(u(0)));
  return [radius * Math.cos(2 * Math.PI * u(1)), radius * Math.sin(2 * Math.PI * u(1))];
}

test('the noise stream is the specified one: SHA-256 counter mode, 53-bit uniforms, Box–Muller', () => {
  const normals = standardNormals(SEED, 9);
  assert.deepEqual([normals[0], normals[1]], firstTwoNormalsBySpec(SEED));
  assert.deepEqual(standardNormals(SEED, 3), normals.slice(0, 3), 'a prefix of a longer stream');
  const many = standardNormals(SEED, 20_000);
  const mean = many.reduce((a, v) => a + v, 0) / many.length;
  const variance = many.reduce((a, v) => a + v * v, 0) / many.length - mean * mean;
  assert.ok(Math.abs(mean) < 0.05 && Math.abs(variance - 1) < 0.05, `mean ${mean}, variance ${variance}`);
  assert.throws(() => standardNormals(SEED.subarray(0, 16), 1), /32 bytes/);
  // The seed is an HMAC of plan and round under the secret; the commitment is its SHA-256.
  const secret = Buffer.alloc(32, 7);
  assert.notDeepEqual(deriveNoiseSeed(secret, 'p', 1), deriveNoiseSeed(secret, 'p', 2));
  assert.match(noiseCommitment(SEED), /^sha256:[0-9a-f]{64}$/);
  assert.equal(noiseCommitment(SEED), `sha256:${createHash('sha256').update(SEED).digest('hex')}`);
});

test('DP-FedAvg by hand: clip to C, divide by the plan\'s 3 edges (not the 2 merged, not by dataset size), add N(0, (zC/n)²), round once', () => {
  const merge = computeMerge(PLAN, fedAvgStrategy, [Y, X], PREVIOUS, null, SEED);
  // x is clipped by 6.5/13 to (6; 1.5, 2); y passes; sum (7; 1.5, 3); / 3 → noise-free b = 7/3, w = [1.5, 3].
  assert.deepEqual(merge.clipped, [{ edge: 'x', norm: 13 }]);
  assert.deepEqual(merge.weights, [1 / 3, 1 / 3]);
  assert.deepEqual([...merge.dp!.noiseFree.get('b')!], [7 / 3]);
  assert.deepEqual([...merge.dp!.noiseFree.get('w')!], [1.5, 3]);
  const sigma = (0.6 * 6.5) / 3;
  assert.equal(merge.dp!.noiseStd, sigma);
  // Noise in tensor-name order (b, then w), index order.
  const noise = standardNormals(SEED, 3);
  assert.deepEqual(values(merge.tensors), {
    b: [Math.fround(7 / 3 + sigma * noise[0]!)],
    w: [Math.fround(1.5 + sigma * noise[1]!), Math.fround(3 + sigma * noise[2]!)],
  });
  assert.deepEqual(values(X.tensors), { b: [12], w: [4, 6] }, 'the input is not mutated');
  assert.throws(() => computeMerge(PLAN, fedAvgStrategy, [X, Y], PREVIOUS), /noise seed/);
});

test('DP-FedAvg is deterministic given the seed and independent of the order of the updates', () => {
  const many = Array.from({ length: 6 }, (_, k) => update(`e${k}`, k + 1, model(Math.sin(k) * 7, [k * k - 3, 1 / (k + 1)])));
  const plan = { edges: many.map((u) => ({ name: u.edge })), privacy: { ...PRIVACY, clipNorm: 2.5 } };
  const reference = computeMerge(plan, fedAvgStrategy, many, PREVIOUS, null, SEED);
  for (const order of [[...many].reverse(), [many[3]!, many[0]!, many[5]!, many[1]!, many[4]!, many[2]!]]) {
    const merge = computeMerge(plan, fedAvgStrategy, order, PREVIOUS, null, Buffer.from(SEED));
    assert.deepEqual(values(merge.tensors), values(reference.tensors));
    assert.deepEqual(merge.clipped, reference.clipped);
  }
  const other = computeMerge(plan, fedAvgStrategy, many, PREVIOUS, null, deriveNoiseSeed(SEED, 'p', 1));
  assert.notDeepEqual(values(other.tensors), values(reference.tensors), 'another seed, other noise');
  assert.deepEqual([...other.dp!.noiseFree.get('w')!], [...reference.dp!.noiseFree.get('w')!], 'the same noise-free average');
});

test('ε is rounded up to 6 significant digits and matches the accountant', () => {
  assert.equal(roundUpSignificant(2.597081), '2.59709');
  assert.equal(roundUpSignificant(2.5970800000001), '2.59709');
  assert.equal(roundUpSignificant(2.59708), '2.59708');
  assert.equal(roundUpSignificant(0.000123456789), '0.000123457');
  assert.equal(roundUpSignificant(0), '0');
  for (let round = 1; round <= 5; round++) {
    const values = privacyTrailerValues({ ...PRIVACY, noiseMultiplier: 1.1 }, round);
    const exact = epsilonAfter(round, 1e-5, 1.1);
    assert.ok(Number(values.epsilon) >= exact && Number(values.epsilon) <= exact * (1 + 1e-5), `${values.epsilon} vs ${exact}`);
    assert.equal(values.delta, '0.00001');
    assert.equal(values.accountant, 'rdp balle2020 z=1.1 q=1 C=6.5 orders=default');
  }
});

test('the seedless audit\'s χ² bounds: near 0 and far above d for 9 coordinates, d ± 4.4 √(2d) for many', () => {
  const [lower, upper] = chiSquareBounds(9);
  assert.ok(lower > 0.05 && lower < 0.5 && upper > 30 && upper < 50, `[${lower}, ${upper}]`);
  const [lowerBig, upperBig] = chiSquareBounds(1e6);
  assert.ok(lowerBig > 1e6 - 6.5e3 && upperBig < 1e6 + 6.5e3, 'close to d ± 4.4 √(2d) for large d');
});

test('privacy in the plan: refusals name the line; a good section parses with samplingRate 1 and balle2020', () => {
  const parse = (extra: string) => parsePlan(`${toyPlan({ edges: ['a', 'b', 'c'] })}${extra}`, 'plan.yaml', builtinRegistries);
  const refused = (extra: string, pattern: RegExp) => assert.throws(() => parse(extra), (e: unknown) => e instanceof PlanInvalid && pattern.test(e.message), extra);
  const section = (fields: string) => `privacy:\n  targetEpsilon: 8\n  delta: 0.00001\n  noiseMultiplier: 5\n  clipNorm: 0.5\n${fields}`;
  assert.deepEqual(parse(section('')).privacy, { targetEpsilon: 8, delta: 1e-5, noiseMultiplier: 5, clipNorm: 0.5, samplingRate: 1, conversion: 'balle2020' });
  assert.equal(parse(`clip: { maxNorm: 0.5 }\nstrategy: { id: fedprox, options: { mu: 0.1 } }\n${section('')}`).privacy?.clipNorm, 0.5);
  for (const robust of ['median', '{ id: trimmed-mean, options: { beta: 0.2 } }', 'krum', 'multi-krum']) {
    refused(`strategy: ${robust}\n${section('')}`, /^plan\.yaml:13: strategy: .* cannot be combined with privacy: a robust rule selects updates by their content/);
  }
  refused(`strategy: fedadam\n${section('')}`, /^plan\.yaml:13: strategy: fedadam cannot be combined with privacy/);
  refused(`clip: { maxNorm: 1 }\n${section('')}`, /^plan\.yaml:13: clip\.maxNorm: is 1 but privacy\.clipNorm is 0\.5/);
  refused(`maxShare: 0.5\n${section('')}`, /^plan\.yaml:13: maxShare: cannot be combined with privacy/);
  refused(section('  samplingRate: 0.5\n'), /^plan\.yaml:18: privacy\.samplingRate: must be 1/);
  // z = 0.3: one round already costs more than ε = 1.
  refused('privacy:\n  targetEpsilon: 1\n  delta: 0.00001\n  noiseMultiplier: 0.3\n  clipNorm: 0.5\n', /^plan\.yaml:14: privacy\.targetEpsilon: a single round .* already exceeds ε = 1/);
  refused(section('  extra: 1\n'), /^plan\.yaml:1[3-8]: privacy/);
});
