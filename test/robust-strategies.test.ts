/**
 * The robust strategies (aggregator-app/robust.ts, krum.ts): values computed by
 * hand, independence of the update order, the published breakdown points, plan
 * options checked with file:line errors, and a toy federation with one Byzantine
 * edge in five, where FedAvg is dragged off while median, trimmed mean, Krum and
 * multi-Krum stay with the honest run — every merge of every run audits, and a
 * forged exclusion list does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { medianStrategy, trimmedMeanStrategy, median, trimmedMean } from '../aggregator-app/robust.js';
import { krumScores, krumSelection, krumStrategy } from '../aggregator-app/krum.js';
import { parsePlan } from '../operator/plan/plan.js';
import { PlanInvalid } from '../operator/errors.js';
import { builtinRegistries } from '../bin/registries.js';
import { WEIGHTS_FILE, METRICS_FILE } from '../operator/git/names.js';
import { fedAvgStrategy } from '../aggregator-app/fedavg.js';
import type { Tensors, Update } from '../operator/contracts.js';
import { startToyFederation } from './helpers/toy-federation.js';
import { tempDir, toyPlan } from './helpers/temp.js';
import { whereUnder } from './helpers/chaos.js';
import { auditCommit } from '../operator/commands/audit.js';
import { readWeights } from '../operator/store/federation.js';

const tensors = (values: number[]): Tensors => new Map([['w', { shape: [values.length], data: Float32Array.from(values) }]]);
const update = (edge: string, values: number[], datasetSize = 10): Update => ({ edge, datasetSize, tensors: tensors(values) });
const previous = tensors([0, 0, 0]);
const out = (t: Tensors) => [...t.get('w')!.data];

test('median and trimmed mean, by hand', () => {
  // Per coordinate: [1, 7, 3] → 3; [−2, 4, 100] → 4; [0.5, 0.25, 0.75] → 0.5.
  const three = [update('a', [1, -2, 0.5]), update('b', [7, 4, 0.25]), update('c', [3, 100, 0.75])];
  assert.deepEqual(out(medianStrategy.aggregate(three, previous)), [3, 4, 0.5]);
  // Even count: the mean of the middle two. [1, 7, 3, 5] → (3 + 5) / 2.
  assert.equal(median(Float64Array.from([1, 3, 5, 7])), 4);
  // Five values, β = 0.2: one dropped at each end. [10, −50, 2, 4, 6] → mean(2, 4, 6) = 4.
  const five = [update('a', [10, 0, 0]), update('b', [-50, 0, 0]), update('c', [2, 0, 0]), update('d', [4, 0, 0]), update('e', [6, 0, 0])];
  assert.equal(out(trimmedMeanStrategy.aggregate(five, previous))[0], 4);
  assert.equal(trimmedMean(Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 0.2), 5.5); // drops 1, 2 and 9, 10
  // Fewer than 1/β edges: nothing trimmed, an unweighted mean (dataset sizes play no part).
  assert.deepEqual(out(trimmedMeanStrategy.aggregate([update('a', [1, 2, 3], 1), update('b', [3, 2, 1], 1000)], previous)), [2, 2, 2]);
  // Every edge weighs 1/n in the trailers, whatever it claims.
  assert.deepEqual(medianStrategy.weights([update('a', [0, 0, 0], 1), update('b', [0, 0, 0], 1e9)]), [0.5, 0.5]);
});

test('the result does not depend on the order of the updates', () => {
  const updates = Array.from({ length: 6 }, (_, k) => update(`e${k}`, [Math.sin(k) * 3, k * k - 7, 1 / (k + 1)]));
  const reversed = [...updates].reverse();
  const shuffled = [updates[3]!, updates[0]!, updates[5]!, updates[1]!, updates[4]!, updates[2]!];
  for (const s of [medianStrategy, trimmedMeanStrategy]) {
    const reference = out(s.aggregate(updates, previous));
    assert.deepEqual(out(s.aggregate(reversed, previous)), reference, s.name);
    assert.deepEqual(out(s.aggregate(shuffled, previous)), reference, s.name);
  }
});

test('the published failure mode: median breaks at half Byzantine, trimmed mean beyond its trim', () => {
  const honest = [update('h1', [1, 1, 1]), update('h2', [1.1, 1.1, 1.1]), update('h3', [0.9, 0.9, 0.9])];
  const attack = (n: number) => Array.from({ length: n }, (_, k) => update(`z${k}`, [-1000, -1000, -1000]));
  // Two attackers among five: the median stays among the honest values.
  assert.ok(out(medianStrategy.aggregate([...honest, ...attack(2)], previous)).every((v) => v >= 0.89 && v <= 1.11));
  // Three among six (half): the median is pulled to the midpoint of an honest and a Byzantine value.
  assert.ok(out(medianStrategy.aggregate([...honest, ...attack(3)], previous)).every((v) => v < -400));
  // Trimmed mean, five edges, β = 0.2 trims one: one attacker is removed, two are not.
  assert.ok(out(trimmedMeanStrategy.aggregate([...honest, update('h4', [1, 1, 1]), ...attack(1)], previous)).every((v) => v >= 0.89 && v <= 1.11));
  assert.ok(out(trimmedMeanStrategy.aggregate([...honest, ...attack(2)], previous)).every((v) => v < -100));
});

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c', 'hospital-d', 'hospital-e'];
const ROUNDS = Number(process.env.R ?? 8);

/** A toy run of five edges; hospital-e, if `byzantine`, pushes the global model sign-flipped and scaled ×25. Returns the final accuracy. */
async function toyRun(t: Parameters<typeof tempDir>[0], strategy: string, byzantine: boolean): Promise<number> {
  const dir = await tempDir(t);
  const fed = await startToyFederation(dir, { rounds: ROUNDS, edges: EDGES, planYaml: `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length })}strategy: ${strategy}\n` });
  lastRun = fed;
  t.after(async () => void (await fed.close()));
  for (let r = 0; r < ROUNDS; r++) {
    for (const edge of EDGES) {
      if (byzantine && edge === 'hospital-e') {
        const global = await readWeights(fed.global, (await fed.head()).oid);
        await fed.push(edge, { tensors: new Map([...global].map(([name, w]) => [name, { shape: w.shape, data: w.data.map((v) => -25 * v) }])) });
      } else {
        await fed.push(edge);
      }
    }
    await fed.settle();
    const merge = await fed.head();
    assert.equal(merge.round, r + 1, `${strategy}: round ${r + 1} merged`);
    const audit = await auditCommit(whereUnder(fed.repos), fed.registries, merge.oid);
    assert.ok(audit.ok, `${strategy} round ${r + 1}: ${audit.checks.filter((c) => !c.ok).map((c) => c.what).join('; ')}`);
  }
  // Judged on held-out samples of the same ground truth, enough of them that 2 points are ~100 samples.
  const judgeOptions = { ...(fed.plan.plan.app.options as object), samplesPerEdge: 20_000 };
  const judge = await fed.registries.apps.createEdgeApp(fed.plan.plan.app.id, judgeOptions, { edge: 'judge', engine: { kind: 'builtin' }, log: { error() {}, warn() {}, info() {}, debug() {} } });
  t.after(() => judge.close());
  const metrics = await judge.evaluate(await readWeights(fed.global, (await fed.head()).oid), new AbortController().signal);
  return metrics.accuracy as number;
}

test('one Byzantine edge in five: FedAvg is dragged off, median, trimmed mean, Krum and multi-Krum stay within 2 points of the honest run; every merge audits, a forged exclusion does not', async (t) => {
  const honest = await toyRun(t, 'fedavg', false);
  const results = {
    fedavg: await toyRun(t, 'fedavg', true),
    median: await toyRun(t, 'median', true),
    'trimmed-mean': await toyRun(t, 'trimmed-mean', true),
    krum: await toyRun(t, '{ id: krum, options: { f: 1 } }', true),
    'multi-krum': await toyRun(t, '{ id: multi-krum, options: { f: 1, m: 3 } }', true),
  };
  t.diagnostic(`toy accuracy after ${ROUNDS} rounds: honest FedAvg ${honest}; with one sign-flipping edge: ${JSON.stringify(results)}`);
  assert.ok(honest >= 0.7, `the honest run learns (${honest})`);
  assert.ok(results.fedavg < honest - 0.02, `FedAvg under attack ${results.fedavg} vs honest ${honest}`);
  assert.ok(results.median >= honest - 0.02, `median ${results.median} vs honest ${honest}`);
  assert.ok(results['trimmed-mean'] >= honest - 0.02, `trimmed mean ${results['trimmed-mean']} vs honest ${honest}`);
  assert.ok(results.krum >= honest - 0.02, `Krum ${results.krum} vs honest ${honest}`);
  assert.ok(results['multi-krum'] >= honest - 0.02, `multi-Krum ${results['multi-krum']} vs honest ${honest}`);

  // The last run (multi-Krum) recorded hospital-e with weight 0 in every merge; a merge that says otherwise does not audit.
  const fed = lastRun!;
  const head = await fed.head();
  assert.equal(head.merged.find((m) => m.edge === 'hospital-e')?.weight, 0);
  assert.deepEqual(head.merged.map((m) => m.weight).filter((w) => w > 0), [1 / 3, 1 / 3, 1 / 3], 'three kept, two excluded');
  const commit = await fed.global.readCommit(head.oid);
  const weightOfE = /(Fedgit-Merged: hospital-e \S+ size=\d+ weight=)0\b/;
  assert.match(commit.message, weightOfE);
  const forged = await fed.global.writeCommit({
    files: { [WEIGHTS_FILE]: await fed.global.readFile(head.oid, WEIGHTS_FILE), [METRICS_FILE]: await fed.global.readFile(head.oid, METRICS_FILE) },
    parents: commit.parents, message: commit.message.replace(weightOfE, '$10.2'), author: commit.author,
  });
  const audit = await auditCommit(whereUnder(fed.repos), fed.registries, forged);
  assert.equal(audit.ok, false);
  assert.ok(audit.checks.some((c) => !c.ok && /merge weights/.test(c.what)), JSON.stringify(audit.checks.filter((c) => !c.ok)));
});

let lastRun: Awaited<ReturnType<typeof startToyFederation>> | undefined;

test('Krum by hand: scores over the n − f − 2 nearest, the lowest kept, ties to edge-name order', () => {
  // Scalars 0, 1, 2, 10 and −20, f = 1: each score sums the squared distances to the 2 nearest others.
  const five = [update('a', [0, 0, 0]), update('b', [1, 0, 0]), update('c', [2, 0, 0]), update('d', [10, 0, 0]), update('e', [-20, 0, 0])];
  assert.deepEqual(krumScores(five, 1), [1 + 4, 1 + 1, 1 + 4, 64 + 81, 400 + 441]);
  assert.deepEqual(krumSelection(five, { f: 1, m: 1 }), [1]);
  assert.deepEqual(krumSelection(five, { f: 1, m: 3 }), [0, 1, 2]); // a and c tie at 5: both kept at m = 3
  assert.deepEqual(krumSelection(five, { f: 1, m: 2 }), [0, 1], 'of the tie a and c, the first in edge-name order');
  assert.deepEqual(out(krumStrategy('multi-krum', { f: 1, m: 3 }).aggregate(five, previous)), [1, 0, 0]);
  assert.deepEqual(krumStrategy('krum', { f: 1, m: 1 }).weights(five), [0, 1, 0, 0, 0]);
});

test('strategy options in the plan: checked with file:line, and plans a strategy cannot serve are refused', () => {
  const plan = (strategy: string, extra = '', edges = EDGES) => `${toyPlan({ edges })}strategy: ${strategy}\n${extra}`;
  const parse = (text: string) => parsePlan(text, 'plan.yaml', { apps: builtinRegistries.apps, strategies: builtinRegistries.strategies });
  const refused = (text: string, pattern: RegExp) => assert.throws(() => parse(text), (e: unknown) => e instanceof PlanInvalid && pattern.test(e.message) && !e.message.includes('\n'));
  assert.deepEqual(parse(plan('{ id: krum, options: { f: 1 } }')).strategyOptions, { f: 1 });
  assert.equal(parse(plan('median')).strategy, 'median');
  refused(plan('{ id: krum, options: { f: 2 } }'), /^plan\.yaml:\d+: strategy\.id: Krum with f = 2 needs at least 7 edges \(n ≥ 2f \+ 3\); the plan has 5$/);
  refused(plan('{ id: krum, options: { f: 1 } }', '', ['hospital-a', 'hospital-b']), /needs at least 5 edges/);
  refused(plan('{ id: multi-krum, options: { f: 1, m: 5 } }'), /multi-Krum keeps m = 5 updates, more than the 4/);
  refused(plan('{ id: krum, options: { f: 1, g: 2 } }'), /^plan\.yaml:\d+: strategy\.options/);
  refused(plan('{ id: krum }'), /strategy\.options\.f/);
  refused(plan('{ id: median, options: { beta: 0.1 } }'), /strategy\.options/);
  refused(plan('krum2'), /^plan\.yaml:\d+: strategy: unknown strategy 'krum2' \(known: fedavg, fedprox, median, trimmed-mean, krum, multi-krum, fedavgm, fedadagrad, fedadam, fedyogi\)$/);
  refused(plan('median', 'maxShare: 0.5\n'), /^plan\.yaml:\d+: maxShare: .*median does not weigh by dataset size/);
});

test('the registry knows each strategy by its id, and each strategy names itself by it', () => {
  assert.deepEqual([...builtinRegistries.strategies.ids()], ['fedavg', 'fedprox', 'median', 'trimmed-mean', 'krum', 'multi-krum', 'fedavgm', 'fedadagrad', 'fedadam', 'fedyogi']);
  for (const id of builtinRegistries.strategies.ids()) {
    const options = id === 'krum' ? { f: 1 } : id === 'multi-krum' ? { f: 1, m: 2 } : {};
    assert.equal(builtinRegistries.strategies.get(id, options).name, id);
  }
  assert.equal(fedAvgStrategy.name, 'fedavg');
  assert.throws(() => builtinRegistries.strategies.get('bulyan'), /bulyan/);
});
