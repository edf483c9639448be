/**
 * Update-norm clipping (plan `clip: { maxNorm }`, operator/reconcile/merge.ts): a hand-computed
 * non-symmetric case, independence of the update order, the plan's checks with file:line,
 * 3-round toy plans with clipping under FedAvg, FedAdam and FedProx that reach their tag with every
 * merge auditing, and forged, hidden or invented clipping trailers that do not audit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clipUpdateNorms, computeMerge, updateNorm } from '../operator/reconcile/merge.js';
import { fedAvgStrategy } from '../aggregator-app/fedavg.js';
import { parsePlan } from '../operator/plan/plan.js';
import { PlanInvalid } from '../operator/errors.js';
import { builtinRegistries } from '../bin/registries.js';
import { METRICS_FILE, WEIGHTS_FILE, parseClipped, renderClipped } from '../operator/git/names.js';
import { STATE_FILE, readStateFile } from '../operator/store/strategy-state.js';
import { readFinalTag } from '../operator/store/federation.js';
import type { GlobalRecord } from '../operator/store/records.js';
import { auditCommit } from '../operator/commands/audit.js';
import { startToyFederation, type ToyFederation } from './helpers/toy-federation.js';
import { tempDir, toyPlan } from './helpers/temp.js';
import { whereUnder } from './helpers/chaos.js';
import { model, update, values } from './helpers/two-tensor-model.js';

// Previous global: b = 0, w = [1, 2]. Edge x (size 1) moves by (12; 3, 4), norm 13; edge y (size 3) by (1; 0, 1), norm √2.
const PREVIOUS = model(0, [1, 2]);
const X = update('x', 1, model(12, [4, 6]));
const Y = update('y', 3, model(1, [1, 3]));

test('clipping by hand: only the update longer than maxNorm is scaled, toward the previous model, before FedAvg', () => {
  assert.equal(updateNorm(X, PREVIOUS), 13);
  assert.equal(updateNorm(Y, PREVIOUS), Math.SQRT2);
  const { updates, clipped } = clipUpdateNorms([X, Y], PREVIOUS, 6.5);
  assert.deepEqual(clipped, [{ edge: 'x', norm: 13 }]);
  // x: previous + (12; 3, 4) · 6.5/13 = b 6, w [2.5, 4]; y unchanged (the same object).
  assert.deepEqual(values(updates[0]!.tensors), { b: [6], w: [2.5, 4] });
  assert.equal(updates[1], Y);
  assert.deepEqual(values(X.tensors), { b: [12], w: [4, 6] }, 'the input is not mutated');
  // FedAvg of the clipped updates, weights 1/4 and 3/4: b = 6/4 + 3/4, w = [2.5/4 + 3/4, 4/4 + 9/4].
  const merge = computeMerge({ edges: [{ name: 'x' }, { name: 'y' }], clip: { maxNorm: 6.5 } }, fedAvgStrategy, [Y, X], PREVIOUS);
  assert.deepEqual(values(merge.tensors), { b: [2.25], w: [1.375, 3.25] });
  assert.deepEqual(merge.clipped, [{ edge: 'x', norm: 13 }]);
  // A norm exactly at the bound is not clipped; without `clip` nothing is.
  assert.deepEqual(clipUpdateNorms([X], PREVIOUS, 13).clipped, []);
  assert.deepEqual(computeMerge({ edges: [{ name: 'x' }, { name: 'y' }] }, fedAvgStrategy, [X, Y], PREVIOUS).clipped, []);
});

test('clipping does not depend on the order of the updates, and its trailer reads back exactly', () => {
  const many = Array.from({ length: 6 }, (_, k) => update(`e${k}`, k + 1, model(Math.sin(k) * 7, [k * k - 3, 1 / (k + 1)])));
  const plan = { edges: many.map((u) => ({ name: u.edge })), clip: { maxNorm: 2.5 } };
  const reference = computeMerge(plan, fedAvgStrategy, many, PREVIOUS);
  assert.ok(reference.clipped.length >= 3, 'several are clipped');
  for (const order of [[...many].reverse(), [many[3]!, many[0]!, many[5]!, many[1]!, many[4]!, many[2]!]]) {
    const merge = computeMerge(plan, fedAvgStrategy, order, PREVIOUS);
    assert.deepEqual(values(merge.tensors), values(reference.tensors));
    assert.deepEqual(merge.clipped, reference.clipped);
  }
  assert.deepEqual(reference.clipped.map((c) => c.edge), [...reference.clipped.map((c) => c.edge)].sort(), 'edge-name order');
  for (const c of reference.clipped) assert.deepEqual(parseClipped(renderClipped(c)), c);
  assert.throws(() => parseClipped('x norm=-1'), /malformed Fedgit-Clipped/);
});

test('clip in the plan: a positive maxNorm, checked with file:line', () => {
  const parse = (extra: string) => parsePlan(`${toyPlan()}${extra}`, 'plan.yaml', builtinRegistries);
  const refused = (extra: string, pattern: RegExp) => assert.throws(() => parse(extra), (e: unknown) => e instanceof PlanInvalid && pattern.test(e.message));
  assert.deepEqual(parse('clip: { maxNorm: 0.5 }\n').clip, { maxNorm: 0.5 });
  assert.equal(parse('').clip, undefined);
  assert.deepEqual(parse('strategy: { id: fedadam, options: { eta: 0.05 } }\nclip:\n  maxNorm: 2\n').clip, { maxNorm: 2 });
  refused('clip: { maxNorm: 0 }\n', /^plan\.yaml:13: clip\.maxNorm: /);
  refused('clip: { maxNorm: -1 }\n', /^plan\.yaml:13: clip\.maxNorm: /);
  refused('clip: { maxnorm: 1 }\n', /^plan\.yaml:13: clip/);
  refused('clip: {}\n', /^plan\.yaml:13: clip\.maxNorm: /);
});

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
const ROUNDS = 3;

/** A 3-round toy plan with clipping; every merge audits (and records clipping), and the plan reaches its tag. */
async function clippedRun(t: Parameters<typeof tempDir>[0], strategy: string): Promise<{ fed: ToyFederation; merges: GlobalRecord[] }> {
  const dir = await tempDir(t);
  // Honest toy updates measure about 0.8 in round 1 and 0.4 by round 3: 0.5 clips some, not all.
  const planYaml = `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length })}strategy: ${strategy}\nclip: { maxNorm: 0.5 }\n`;
  const fed = await startToyFederation(dir, { rounds: ROUNDS, edges: EDGES, planYaml });
  t.after(async () => void (await fed.close()));
  const merges: GlobalRecord[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const merge = await fed.round();
    assert.equal(merge.round, r);
    merges.push(merge);
    const audit = await auditCommit(whereUnder(fed.repos), fed.registries, merge.oid);
    assert.ok(audit.ok, `${strategy} round ${r}: ${audit.checks.filter((c) => !c.ok).map((c) => c.what).join('; ')}`);
    assert.ok(audit.checks.some((c) => c.ok && /^updates clipped \(norm 0\.5\)/.test(c.what)), 'audit checked the clipping');
  }
  assert.ok(merges.some((m) => (m.clipped ?? []).length > 0), `${strategy}: some update was clipped`);
  assert.equal(await readFinalTag(fed.global, fed.plan), (await fed.head()).oid, `${strategy}: the plan reached its tag`);
  return { fed, merges };
}

/** A merge rewritten with `message` (same files, same parent), then audited. */
async function auditRewritten(fed: ToyFederation, head: GlobalRecord, rewrite: (message: string) => string) {
  const commit = await fed.global.readCommit(head.oid);
  const state = await readStateFile(fed.global, head.oid);
  const files = { [WEIGHTS_FILE]: await fed.global.readFile(head.oid, WEIGHTS_FILE), [METRICS_FILE]: await fed.global.readFile(head.oid, METRICS_FILE), ...(state ? { [STATE_FILE]: state } : {}) };
  const message = rewrite(commit.message);
  assert.notEqual(message, commit.message, 'the rewrite changed the message');
  const forged = await fed.global.writeCommit({ files, parents: commit.parents, message, author: commit.author });
  return auditCommit(whereUnder(fed.repos), fed.registries, forged);
}

test('clipping + fedavg: 3 rounds to the tag, every merge audits; a forged, hidden or invented clipping does not', async (t) => {
  const { fed, merges } = await clippedRun(t, 'fedavg');
  const withClipping = merges.find((m) => (m.clipped ?? []).length > 0)!;
  const withUnclipped = merges.find((m) => (m.clipped ?? []).length < EDGES.length);
  assert.ok(withUnclipped, 'some merge has an unclipped update');
  const unclippedEdge = EDGES.find((e) => !(withUnclipped.clipped ?? []).some((c) => c.edge === e))!;
  const failsOnClipping = async (merge: GlobalRecord, rewrite: (m: string) => string, what: string) => {
    const audit = await auditRewritten(fed, merge, rewrite);
    assert.equal(audit.ok, false, what);
    assert.ok(audit.checks.some((c) => !c.ok && /^updates clipped/.test(c.what)), `${what}: ${JSON.stringify(audit.checks.filter((c) => !c.ok))}`);
    return audit;
  };
  const clippedLine = /^Fedgit-Clipped: (\S+) norm=(\S+)$/m;
  await failsOnClipping(withClipping, (m) => m.replace(clippedLine, (_, edge: string, norm: string) => `Fedgit-Clipped: ${edge} norm=${Number(norm) * 1.000001}`), 'forged norm');
  await failsOnClipping(withClipping, (m) => m.replace(/^Fedgit-Clipped: .*\n/m, ''), 'hidden');
  await failsOnClipping(withUnclipped, (m) => m.replace(/^(Fedgit-Merged: .*)$/m, `$1\nFedgit-Clipped: ${unclippedEdge} norm=3`), 'invented');
  // An edge name in a forged trailer is escaped before it reaches the audit's report.
  const audit = await failsOnClipping(withUnclipped, (m) => m.replace(/^(Fedgit-Merged: .*)$/m, '$1\nFedgit-Clipped: \u001b[31mevil norm=1'), 'invented, with a control character');
  assert.ok(audit.checks.every((c) => !c.what.includes('\u001b')), 'no raw control character in the report');
});

test('clipping + fedadam: 3 rounds to the tag, every merge audits (weights, state and clipping)', async (t) => {
  const { fed } = await clippedRun(t, '{ id: fedadam, options: { eta: 0.05 } }');
  assert.notEqual(await readStateFile(fed.global, (await fed.head()).oid), null, 'the optimiser state is committed');
});

test('clipping + fedprox: 3 rounds to the tag, every merge audits', async (t) => {
  await clippedRun(t, '{ id: fedprox, options: { mu: 0.1 } }');
});
