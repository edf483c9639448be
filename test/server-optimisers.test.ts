/**
 * The server optimisers (aggregator-app/fedavgm.ts, fedadagrad.ts, fedadam.ts, fedyogi.ts): two
 * steps of each computed by hand (so the carried state matters), independence of the update order,
 * a state that survives its round trip through the committed file, plan options checked with
 * file:line, a 3-round toy plan per optimiser that reaches its tag with every merge auditing
 * (weights and state), and a tampered state that does not audit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fedAvgMStrategy } from '../aggregator-app/fedavgm.js';
import { fedAdagradStrategy } from '../aggregator-app/fedadagrad.js';
import { fedAdamStrategy } from '../aggregator-app/fedadam.js';
import { fedYogiStrategy } from '../aggregator-app/fedyogi.js';
import type { Strategy, StrategyState, Tensors, Update } from '../operator/contracts.js';
import { parsePlan } from '../operator/plan/plan.js';
import { PlanInvalid } from '../operator/errors.js';
import { builtinRegistries } from '../bin/registries.js';
import { METRICS_FILE, WEIGHTS_FILE, planBranch } from '../operator/git/names.js';
import { STATE_FILE, parseState, readStateFile, stateBytes } from '../operator/store/strategy-state.js';
import { readFinalTag, readWeights } from '../operator/store/federation.js';
import { auditCommit } from '../operator/commands/audit.js';
import { startToyFederation } from './helpers/toy-federation.js';
import { tempDir, toyPlan } from './helpers/temp.js';
import { whereUnder } from './helpers/chaos.js';

const tensors = (values: number[]): Tensors => new Map([['w', { shape: [values.length], data: Float32Array.from(values) }]]);
const update = (edge: string, datasetSize: number, values: number[]): Update => ({ edge, datasetSize, tensors: tensors(values) });
const values = (t: Tensors, name = 'w') => [...t.get(name)!.data];
const f32 = (xs: number[]) => xs.map(Math.fround);

// x0 = [1, −2]. Round 1: a (size 1) and b (size 3) average to [0, 1], so Δ1 = [−1, 3].
const X0 = tensors([1, -2]);
const ROUND_1 = [update('a', 1, [3, -2]), update('b', 3, [-1, 2])];
// Round 2: they average to [(2 + 3) / 4, −3 / 4] = [1.25, −0.75]; Δ2 = that − x1.
const ROUND_2 = [update('a', 1, [2, 0]), update('b', 3, [1, -1])];

/** Two steps, the second from the state the first returned. */
function twoSteps(s: Strategy) {
  const first = s.step!(ROUND_1, X0, null);
  const second = s.step!(ROUND_2, first.tensors, first.state);
  return { first, second };
}

test('FedAvgM by hand, η = 0.5, β = 0.5', () => {
  const { first, second } = twoSteps(fedAvgMStrategy({ eta: 0.5, beta: 0.5 }));
  // v1 = Δ1 = [−1, 3]; x1 = x0 + 0.5 v1 = [0.5, −0.5].
  assert.deepEqual(values(first.tensors), [0.5, -0.5]);
  assert.deepEqual(values(first.state.tensors, 'v/w'), [-1, 3]);
  // Δ2 = [1.25 − 0.5, −0.75 + 0.5] = [0.75, −0.25]; v2 = 0.5 v1 + Δ2 = [0.25, 1.25]; x2 = x1 + 0.5 v2 = [0.625, 0.125].
  assert.deepEqual(values(second.state.tensors, 'v/w'), [0.25, 1.25]);
  assert.deepEqual(values(second.tensors), [0.625, 0.125]);
  assert.deepEqual([first.state.step, second.state.step], [1, 2]);
});

test('FedAdagrad by hand, η = 0.5, β1 = 0.5, τ = 1', () => {
  const { first, second } = twoSteps(fedAdagradStrategy({ eta: 0.5, beta1: 0.5, tau: 1 }));
  // m1 = 0.5 Δ1 = [−0.5, 1.5]; v1 = Δ1² = [1, 9]; x1 = x0 + 0.5 m1 / (√v1 + 1) = [1 − 0.25/2, −2 + 0.75/4] = [0.875, −1.8125].
  assert.deepEqual(values(first.state.tensors, 'm/w'), [-0.5, 1.5]);
  assert.deepEqual(values(first.state.tensors, 'v/w'), [1, 9]);
  assert.deepEqual(values(first.tensors), [0.875, -1.8125]);
  // Δ2 = [0.375, 1.0625]; m2 = 0.5 m1 + 0.5 Δ2 = [−0.0625, 1.28125]; v2 = v1 + Δ2² = [1.140625, 10.12890625].
  assert.deepEqual(values(second.state.tensors, 'm/w'), [-0.0625, 1.28125]);
  assert.deepEqual(values(second.state.tensors, 'v/w'), [1.140625, 10.12890625]);
  assert.deepEqual(values(second.tensors), f32([0.875 + (0.5 * -0.0625) / (Math.sqrt(1.140625) + 1), -1.8125 + (0.5 * 1.28125) / (Math.sqrt(10.12890625) + 1)]));
});

test('FedAdam by hand, η = 0.5, β1 = 0.5, β2 = 0.75, τ = 0.5 (no bias correction)', () => {
  const { first, second } = twoSteps(fedAdamStrategy({ eta: 0.5, beta1: 0.5, beta2: 0.75, tau: 0.5 }));
  // m1 = [−0.5, 1.5]; v1 = 0.25 Δ1² = [0.25, 2.25]; x1 = x0 + 0.5 m1 / (√v1 + 0.5) = [1 − 0.25/1, −2 + 0.75/2] = [0.75, −1.625].
  assert.deepEqual(values(first.state.tensors, 'm/w'), [-0.5, 1.5]);
  assert.deepEqual(values(first.state.tensors, 'v/w'), [0.25, 2.25]);
  assert.deepEqual(values(first.tensors), [0.75, -1.625]);
  // Δ2 = [0.5, 0.875]; m2 = [0, 1.1875]; v2 = 0.75 v1 + 0.25 Δ2² = [0.1875 + 0.0625, 1.6875 + 0.19140625] = [0.25, 1.87890625].
  assert.deepEqual(values(second.state.tensors, 'm/w'), [0, 1.1875]);
  assert.deepEqual(values(second.state.tensors, 'v/w'), [0.25, 1.87890625]);
  assert.deepEqual(values(second.tensors), f32([0.75, -1.625 + (0.5 * 1.1875) / (Math.sqrt(1.87890625) + 0.5)]));
});

test('FedYogi by hand, η = 0.5, β1 = 0.5, β2 = 0.75, τ = 0.5: v moves by (1 − β2)Δ² toward Δ², not at all when equal', () => {
  const { first, second } = twoSteps(fedYogiStrategy({ eta: 0.5, beta1: 0.5, beta2: 0.75, tau: 0.5 }));
  // v0 = 0 < Δ1²: v1 = 0 + 0.25 Δ1² = [0.25, 2.25], as FedAdam; so are m1 and x1.
  assert.deepEqual(values(first.state.tensors, 'v/w'), [0.25, 2.25]);
  assert.deepEqual(values(first.tensors), [0.75, -1.625]);
  // Δ2² = [0.25, 0.765625]: sign(v1 − Δ2²) = [0, +1]; v2 = [0.25, 2.25 − 0.25 · 0.765625] = [0.25, 2.05859375].
  assert.deepEqual(values(second.state.tensors, 'm/w'), [0, 1.1875]);
  assert.deepEqual(values(second.state.tensors, 'v/w'), [0.25, 2.05859375]);
  assert.deepEqual(values(second.tensors), f32([0.75, -1.625 + (0.5 * 1.1875) / (Math.sqrt(2.05859375) + 0.5)]));
});

const ALL: Strategy[] = [
  fedAvgMStrategy({ eta: 1, beta: 0.9 }),
  fedAdagradStrategy({ eta: 0.1, beta1: 0.9, tau: 1e-3 }),
  fedAdamStrategy({ eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
  fedYogiStrategy({ eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }),
];

const bytesOf = (r: { tensors: Tensors; state: StrategyState }) =>
  Buffer.concat([Buffer.from(r.tensors.get('w')!.data.buffer), stateBytes(r.state, { planId: 'p', round: r.state.step, strategy: 's' })]);

test('the same bytes whatever the order of the updates, and after the state is written and read back', () => {
  const edges = ['e3', 'e0', 'e5', 'e1', 'e4', 'e2'];
  const round = (k: number) => edges.map((e, i) => update(e, 3 + i * 7, [Math.sin(i + k) * 3, i * i - 7 + k, 1 / (i + 1)]));
  const previous = tensors([0.1, -0.2, 0.3]);
  for (const s of ALL) {
    const first = s.step!(round(0), previous, null);
    const reference = bytesOf(s.step!(round(1), first.tensors, first.state));
    assert.ok(bytesOf(s.step!([...round(1)].reverse(), first.tensors, first.state)).equals(reference), `${s.name}: reversed`);
    const stored = parseState(stateBytes(first.state, { planId: 'p', round: 1, strategy: s.name }), 'test');
    assert.ok(bytesOf(s.step!(round(1), first.tensors, stored)).equals(reference), `${s.name}: from the state read back`);
    assert.deepEqual(values(s.aggregate(round(0), previous)), values(first.tensors), `${s.name}: aggregate is the first step`);
  }
});

test('a state of another shape is refused, naming the tensor', () => {
  const s = fedAdamStrategy({ eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  const { state } = s.step!(ROUND_1, X0, null);
  const without = { step: 1, tensors: new Map([...state.tensors].filter(([name]) => name !== 'v/w')) };
  assert.throws(() => s.step!(ROUND_2, X0, without), /optimiser state lacks tensor v\/w of 2 values/);
  const extra = { step: 1, tensors: new Map([...state.tensors, ['v/bias', { shape: [1], data: new Float32Array(1) }]]) };
  assert.throws(() => s.step!(ROUND_2, X0, extra), /tensor v\/bias that matches no slot/);
});

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
const parse = (strategy: string, extra = '') =>
  parsePlan(`${toyPlan({ edges: EDGES })}strategy: ${strategy}\n${extra}`, 'plan.yaml', builtinRegistries);

test('options: the paper\'s defaults, each field checked with file:line, maxShare allowed (FedAvg weights)', () => {
  assert.deepEqual(parse('fedadam').strategyOptions, { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  assert.deepEqual(parse('fedyogi').strategyOptions, { eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
  assert.deepEqual(parse('fedadagrad').strategyOptions, { eta: 0.1, beta1: 0.9, tau: 1e-3 });
  assert.deepEqual(parse('{ id: fedavgm, options: { beta: 0.5 } }').strategyOptions, { eta: 1, beta: 0.5 });
  assert.equal(parse('fedadam', 'maxShare: 0.5\n').maxShare, 0.5);
  const refused = (strategy: string, pattern: RegExp) => assert.throws(() => parse(strategy), (e: unknown) => e instanceof PlanInvalid && pattern.test(e.message));
  refused('{ id: fedadam, options: { beta2: 1 } }', /^plan\.yaml:\d+: strategy\.options\.beta2/);
  refused('{ id: fedyogi, options: { tau: 0 } }', /^plan\.yaml:\d+: strategy\.options\.tau/);
  refused('{ id: fedavgm, options: { eta: -1 } }', /^plan\.yaml:\d+: strategy\.options\.eta/);
  refused('{ id: fedadagrad, options: { beta2: 0.9 } }', /^plan\.yaml:\d+: strategy\.options/);
});

const PLANS: Record<string, string> = {
  fedavg: 'fedavg',
  fedavgm: '{ id: fedavgm, options: { eta: 1, beta: 0.5 } }',
  fedadagrad: 'fedadagrad',
  fedadam: 'fedadam',
  fedyogi: '{ id: fedyogi, options: { eta: 0.05 } }',
};
const ROUNDS = 3;

/** A 3-round toy plan with the strategy; every merge audits, and the plan reaches its tag. */
async function toyRun(t: Parameters<typeof tempDir>[0], id: string) {
  const dir = await tempDir(t);
  const fed = await startToyFederation(dir, { rounds: ROUNDS, edges: EDGES, planYaml: `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length })}strategy: ${PLANS[id]}\n` });
  t.after(async () => void (await fed.close()));
  for (let r = 1; r <= ROUNDS; r++) {
    const merge = await fed.round();
    assert.equal(merge.round, r, `${id}: round ${r} merged`);
    assert.equal(merge.strategy, id);
    const stored = await readStateFile(fed.global, merge.oid);
    if (id === 'fedavg') assert.equal(stored, null, 'a stateless strategy stores no optimiser state');
    else assert.equal(parseState(stored!, `${STATE_FILE} of round ${r}`).step, r, `${id}: the state of round ${r} has taken ${r} steps`);
    const audit = await auditCommit(whereUnder(fed.repos), fed.registries, merge.oid);
    assert.ok(audit.ok, `${id} round ${r}: ${audit.checks.filter((c) => !c.ok).map((c) => c.what).join('; ')}`);
    if (id !== 'fedavg') assert.ok(audit.checks.some((c) => c.ok && /optimiser state .* matches the stored/.test(c.what)), `${id}: audit checked the state`);
  }
  assert.equal(await readFinalTag(fed.global, fed.plan), (await fed.head()).oid, `${id}: the plan reached its tag`);
  return fed;
}

/** Accuracy of the final model on held-out samples of the same ground truth (the judge of test/robust-strategies.test.ts). */
async function heldOutAccuracy(t: Parameters<typeof tempDir>[0], fed: Awaited<ReturnType<typeof toyRun>>): Promise<number> {
  const options = { ...(fed.plan.plan.app.options as object), samplesPerEdge: 20_000 };
  const judge = await fed.registries.apps.createEdgeApp(fed.plan.plan.app.id, options, { edge: 'judge', engine: { kind: 'builtin' }, log: { error() {}, warn() {}, info() {}, debug() {} } });
  t.after(() => judge.close());
  const metrics = await judge.evaluate(await readWeights(fed.global, (await fed.head()).oid), new AbortController().signal);
  return metrics.accuracy as number;
}

for (const id of Object.keys(PLANS)) {
  test(`${id}: a ${ROUNDS}-round toy plan reaches its tag, every merge audits (weights${id === 'fedavg' ? ', no state' : ' and optimiser state'})`, async (t) => {
    const fed = await toyRun(t, id);
    t.diagnostic(`${id} (${PLANS[id]}): held-out accuracy after ${ROUNDS} rounds ${await heldOutAccuracy(t, fed)}`);
  });
}

test('a tampered optimiser state does not audit: changed, or left out', async (t) => {
  const fed = await toyRun(t, 'fedadam');
  const head = await fed.head();
  const commit = await fed.global.readCommit(head.parent!);
  const honest = parseState((await readStateFile(fed.global, commit.oid))!, 'round 2');
  const [name, first] = [...honest.tensors].find(([key]) => key.startsWith('m/'))!;
  const m = new Float32Array(first.data);
  m[0] = m[0]! + 1e-3;
  const changed = new Map([...honest.tensors, [name, { shape: first.shape, data: m }]]);
  const forge = async (state: Buffer | null) => fed.global.writeCommit({
    files: {
      [WEIGHTS_FILE]: await fed.global.readFile(commit.oid, WEIGHTS_FILE),
      [METRICS_FILE]: await fed.global.readFile(commit.oid, METRICS_FILE),
      ...(state ? { [STATE_FILE]: state } : {}),
    },
    parents: commit.parents, message: commit.message, author: commit.author,
  });
  const failures = async (oid: string) => (await auditCommit(whereUnder(fed.repos), fed.registries, oid)).checks.filter((c) => !c.ok).map((c) => c.what);

  const tampered = await forge(stateBytes({ step: 2, tensors: changed }, { planId: fed.plan.id, round: 2, strategy: 'fedadam' }));
  const caught = await failures(tampered);
  assert.equal(caught.length, 1, caught.join('; '));
  assert.match(caught[0]!, /^recomputed fedadam optimiser state \(step 2, \d+ tensors\) matches the stored optimiser-state\.safetensors bit for bit: it differs \(m\/\S+\[0\] is \S+ stored, \S+ recomputed\)$/);
  t.diagnostic(`audit of the tampered commit: FAIL ${caught[0]}`);

  assert.match((await failures(await forge(null))).join('; '), /the commit has no optimiser-state\.safetensors/);

  // A round-3 merge on top of a commit whose state is gone cannot be recomputed: the parent is named.
  const child = await fed.global.readCommit(head.oid);
  const orphan = await fed.global.writeCommit({
    files: { [WEIGHTS_FILE]: await fed.global.readFile(head.oid, WEIGHTS_FILE), [METRICS_FILE]: await fed.global.readFile(head.oid, METRICS_FILE), [STATE_FILE]: (await readStateFile(fed.global, head.oid))! },
    parents: [await forge(null)], message: child.message, author: child.author,
  });
  assert.match((await failures(orphan)).join('; '), /holds a readable optimiser state: .*has no optimiser-state\.safetensors/);
});

test('an aggregator does not restart a lost state from zero: a head without its state stops the merge, naming the commit', async (t) => {
  const dir = await tempDir(t);
  const fed = await startToyFederation(dir, { rounds: ROUNDS, edges: EDGES, planYaml: `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length })}strategy: fedadam\n` });
  t.after(async () => void (await fed.close()));
  const first = await fed.round();
  const commit = await fed.global.readCommit(first.oid);
  const stateless = await fed.global.writeCommit({
    files: { [WEIGHTS_FILE]: await fed.global.readFile(first.oid, WEIGHTS_FILE), [METRICS_FILE]: await fed.global.readFile(first.oid, METRICS_FILE) },
    parents: commit.parents, message: commit.message, author: commit.author,
  });
  await fed.global.updateRef(planBranch(fed.plan.plan.name, fed.plan.id), stateless, first.oid);
  for (const edge of EDGES) await fed.push(edge);
  await assert.rejects(fed.aggregator.reconcile(), new RegExp(`global commit ${stateless.slice(0, 8)} \\(round 1\\) has no optimiser-state\\.safetensors`));
  assert.equal((await fed.head()).oid, stateless, 'nothing merged on top of it');
});
