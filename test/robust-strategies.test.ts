/**
 * The coordinate-wise robust strategies (aggregator-app/robust.ts): values
 * computed by hand, independence of the update order, the published breakdown
 * point, and a toy federation with one Byzantine edge in five, where FedAvg is
 * dragged off while median and trimmed mean stay with the honest run — and every
 * merge of every run audits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { medianStrategy, trimmedMeanStrategy, median, trimmedMean } from '../aggregator-app/robust.js';
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

test('one Byzantine edge in five: FedAvg is dragged off, median and trimmed mean stay within 2 points of the honest run; every merge audits', async (t) => {
  const honest = await toyRun(t, 'fedavg', false);
  const results = { fedavg: await toyRun(t, 'fedavg', true), median: await toyRun(t, 'median', true), 'trimmed-mean': await toyRun(t, 'trimmed-mean', true) };
  t.diagnostic(`toy accuracy after ${ROUNDS} rounds: honest FedAvg ${honest}; with one sign-flipping edge: ${JSON.stringify(results)}`);
  assert.ok(honest >= 0.7, `the honest run learns (${honest})`);
  assert.ok(results.fedavg < honest - 0.02, `FedAvg under attack ${results.fedavg} vs honest ${honest}`);
  assert.ok(results.median >= honest - 0.02, `median ${results.median} vs honest ${honest}`);
  assert.ok(results['trimmed-mean'] >= honest - 0.02, `trimmed mean ${results['trimmed-mean']} vs honest ${honest}`);
});

test('plans name the strategies; an unknown one is refused with the known ones listed', async () => {
  const { builtinRegistries } = await import('../bin/registries.js');
  assert.deepEqual([...builtinRegistries.strategies.ids()].sort(), ['fedavg', 'median', 'trimmed-mean']);
  assert.throws(() => builtinRegistries.strategies.get('krum'), /krum.*fedavg, median, trimmed-mean|fedavg, median, trimmed-mean.*krum/s);
  assert.equal(fedAvgStrategy.name, 'fedavg');
});
