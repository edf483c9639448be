/**
 * The robust strategies (aggregator-app/robust.ts, krum.ts): values computed by
 * hand (the trimmed mean at β = 0.4 too), independence of the update order, the
 * published breakdown points, plan options checked with file:line errors, the
 * proximal μ as a registry capability, and the issue-13 table: a toy federation
 * with one Byzantine edge in five, scaled or sign-flipped, where FedAvg ends more
 * than 2 points below the honest run while median, trimmed mean, Krum, multi-Krum
 * and FedAvg with update-norm clipping stay within 2 points — every merge of every
 * run audits, and a forged exclusion list does not. The table is printed as `#`
 * lines: `node --test --test-name-pattern=Byzantine dist/test/robust-strategies.test.js`.
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
import type { StrategyRegistry, Tensors, Update } from '../operator/contracts.js';
import { proximalMuOf, proximalTermProblem } from '../operator/reconcile/proximal-term.js';
import { startToyFederation, type ToyFederation } from './helpers/toy-federation.js';
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

test('trimmed mean with β from the plan, by hand: β = 0.4 drops ⌊0.4·n⌋ at each end', () => {
  const values = [100, -7, 3, 5, 1, 2, 8, 9, -30, 4]; // sorted: −30, −7, 1, 2, 3, 4, 5, 8, 9, 100
  const ten = values.map((v, k) => update(`e${k}`, [v, 0, 0]));
  const strategies = builtinRegistries.strategies;
  assert.equal(out(strategies.get('trimmed-mean', { beta: 0.4 }).aggregate(ten, previous))[0], 3.5, 'four dropped at each end: mean(3, 4)');
  assert.equal(out(strategies.get('trimmed-mean', {}).aggregate(ten, previous))[0], Math.fround(23 / 6), 'default β = 0.2 drops two: mean(1, 2, 3, 4, 5, 8)');
  assert.equal(out(strategies.get('trimmed-mean', { beta: 0 }).aggregate(ten, previous))[0], 9.5, 'β = 0: the unweighted mean');
  // Seven edges, β = 0.4: ⌊2.8⌋ = 2 dropped at each end, so two attackers are removed (β = 0.2 would drop one).
  const seven = [update('a', [1, 0, 0]), update('b', [2, 0, 0]), update('c', [3, 0, 0]), update('d', [4, 0, 0]), update('e', [5, 0, 0]), update('y', [1000, 0, 0]), update('z', [1000, 0, 0])];
  assert.equal(out(strategies.get('trimmed-mean', { beta: 0.4 }).aggregate(seven, previous))[0], 4, 'mean(3, 4, 5)');
  assert.ok(out(strategies.get('trimmed-mean', { beta: 0.2 }).aggregate(seven, previous))[0]! > 100, 'β = 0.2 keeps one attacker');
  assert.throws(() => strategies.get('trimmed-mean', { beta: 0.5 }), /beta/);
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

/** The clipping bound of the toy table: honest toy updates measure 0.82 in round 1, 0.39 in round 3, 0.22 in round 8. */
const TOY_CLIP_NORM = 0.4;

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c', 'hospital-d', 'hospital-e'];
const ROUNDS = Number(process.env.R ?? 8);

/**
 * What the Byzantine edge (hospital-e) pushes instead of its honest model `local`, trained like the
 * others from the global model `global`, its honest delta being Δ = local − global:
 * - `scaled`: global + λ‖Δ‖·z, z a unit Gaussian direction drawn from the round (an update λ times as
 *   long as an honest one, pointing nowhere useful: the Gaussian Byzantine vectors of Blanchard et
 *   al. 2017). Boosting Δ itself (global + λΔ) is no attack on this toy: FedAvg stayed within
 *   2 points at λ = 25 and 100, since a longer step in the honest direction keeps a linear model's
 *   decisions.
 * - `sign-flipped`: global − λΔ.
 * λ = ATTACK_FACTOR. Deterministic: the direction comes from a seeded generator, not Math.random.
 */
export type Attack = 'scaled' | 'sign-flipped';
const ATTACK_FACTOR = 25;

/** A unit-norm Gaussian direction over the tensors of `like`, the same for the same round on any machine. */
function gaussianDirection(like: Tensors, round: number): Map<string, Float64Array> {
  let seed = Math.imul(round + 1, 2654435761) >>> 0;
  const uniform = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const gaussian = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const direction = new Map([...like].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, t]) => [name, Float64Array.from(t.data, gaussian)]));
  const norm = Math.sqrt([...direction.values()].reduce((sum, z) => z.reduce((s, v) => s + v * v, sum), 0));
  for (const z of direction.values()) z.forEach((v, i) => (z[i] = v / norm));
  return direction;
}

function attackTensors(attack: Attack, global: Tensors, local: Tensors, round: number): Tensors {
  const delta = new Map([...global].map(([name, g]) => [name, Float64Array.from(g.data, (v, i) => local.get(name)!.data[i]! - v)]));
  const honestNorm = Math.sqrt([...delta.values()].reduce((sum, d) => d.reduce((s, v) => s + v * v, sum), 0));
  const step = attack === 'scaled' ? gaussianDirection(global, round) : delta;
  const factor = attack === 'scaled' ? ATTACK_FACTOR * honestNorm : -ATTACK_FACTOR;
  return new Map([...global].map(([name, g]) => [name, { shape: g.shape, data: g.data.map((v, i) => v + factor * step.get(name)![i]!) }]));
}

/** The strategies compared, as the plan spells them (`clip` adds update-norm clipping to FedAvg). */
const ROBUST_ROWS: ReadonlyArray<{ readonly label: string; readonly planLines: string }> = [
  { label: 'fedavg', planLines: 'strategy: fedavg\n' },
  { label: 'median', planLines: 'strategy: median\n' },
  { label: 'trimmed-mean', planLines: 'strategy: trimmed-mean\n' },
  { label: 'krum', planLines: 'strategy: { id: krum, options: { f: 1 } }\n' },
  { label: 'multi-krum', planLines: 'strategy: { id: multi-krum, options: { f: 1, m: 3 } }\n' },
  { label: 'fedavg + clip', planLines: `strategy: fedavg\nclip: { maxNorm: ${TOY_CLIP_NORM} }\n` },
];

/** A toy run of five edges, hospital-e attacking if `attack` is given; every merge audits. Returns the final accuracy and the federation. */
async function toyRun(t: Parameters<typeof tempDir>[0], planLines: string, attack: Attack | null) {
  const dir = await tempDir(t);
  const fed = await startToyFederation(dir, { rounds: ROUNDS, edges: EDGES, planYaml: `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length })}${planLines}` });
  const { app } = fed.plan.plan;
  const quiet = { error() {}, warn() {}, info() {}, debug() {} };
  const attacker = await fed.registries.apps.createEdgeApp(app.id, app.options, { edge: 'hospital-e', engine: { kind: 'builtin' }, log: quiet });
  t.after(async () => void (await Promise.all([fed.close(), attacker.close()])));
  for (let r = 0; r < ROUNDS; r++) {
    for (const edge of EDGES) {
      if (attack && edge === 'hospital-e') {
        const base = await fed.head();
        const global = await readWeights(fed.global, base.oid);
        const honest = await attacker.train({ weights: global, epochs: fed.plan.plan.epochsPerRound, round: base.round + 1, planId: fed.plan.id, seed: fed.plan.plan.seed, signal: new AbortController().signal });
        await fed.push(edge, { tensors: attackTensors(attack, global, honest.weights, base.round + 1) });
      } else {
        await fed.push(edge);
      }
    }
    await fed.settle();
    const merge = await fed.head();
    assert.equal(merge.round, r + 1, `${planLines}: round ${r + 1} merged`);
    const audit = await auditCommit(whereUnder(fed.repos), fed.registries, merge.oid);
    assert.ok(audit.ok, `${planLines} round ${r + 1}: ${audit.checks.filter((c) => !c.ok).map((c) => c.what).join('; ')}`);
  }
  // Judged on held-out samples of the same ground truth, enough of them that 2 points are ~100 samples.
  const judge = await fed.registries.apps.createEdgeApp(app.id, { ...(app.options as object), samplesPerEdge: 20_000 }, { edge: 'judge', engine: { kind: 'builtin' }, log: quiet });
  t.after(() => judge.close());
  const metrics = await judge.evaluate(await readWeights(fed.global, (await fed.head()).oid), new AbortController().signal);
  return { accuracy: metrics.accuracy as number, fed };
}

/** The table of docs/strategies.md: accuracy after ROUNDS rounds, honest and under each attack. */
function renderTable(honest: number, results: Readonly<Record<Attack, Readonly<Record<string, number>>>>): string {
  const pct = (a: number) => `${(100 * a).toFixed(1)} %`;
  const lines = [`toy accuracy after ${ROUNDS} rounds, five edges, hospital-e Byzantine (λ = ${ATTACK_FACTOR}, clip maxNorm ${TOY_CLIP_NORM}); honest FedAvg: ${pct(honest)}`, '| strategy | scaled | sign-flipped |', '|---|---|---|'];
  for (const { label } of ROBUST_ROWS) lines.push(`| ${label} | ${pct(results.scaled[label]!)} | ${pct(results['sign-flipped'][label]!)} |`);
  return lines.join('\n');
}

test('one Byzantine edge in five, scaled or sign-flipped: FedAvg is dragged off, median, trimmed mean, Krum, multi-Krum and FedAvg with clipping stay within 2 points of the honest run; every merge audits, a forged exclusion does not', async (t) => {
  const honest = (await toyRun(t, 'strategy: fedavg\n', null)).accuracy;
  assert.ok(honest >= 0.7, `the honest run learns (${honest})`);
  const results = { scaled: {}, 'sign-flipped': {} } as Record<Attack, Record<string, number>>;
  let multiKrum: ToyFederation | undefined;
  for (const attack of ['scaled', 'sign-flipped'] as const) {
    for (const row of ROBUST_ROWS) {
      const run = await toyRun(t, row.planLines, attack);
      results[attack][row.label] = run.accuracy;
      if (row.label === 'multi-krum') multiKrum = run.fed;
    }
  }
  for (const line of renderTable(honest, results).split('\n')) t.diagnostic(line);
  for (const attack of ['scaled', 'sign-flipped'] as const) {
    const r = results[attack];
    assert.ok(r.fedavg! < honest - 0.02, `${attack}: FedAvg under attack ${r.fedavg} is more than 2 points below honest ${honest}`);
    for (const label of ['median', 'trimmed-mean', 'krum', 'multi-krum', 'fedavg + clip']) {
      assert.ok(r[label]! >= honest - 0.02, `${attack}: ${label} ${r[label]} within 2 points of honest ${honest}`);
    }
  }
  await forgedExclusionFailsAudit(multiKrum!);
});

/** The last multi-Krum run recorded hospital-e with weight 0; a merge that says otherwise does not audit. */
async function forgedExclusionFailsAudit(fed: ToyFederation): Promise<void> {
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
}

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
  assert.deepEqual(parse(plan('{ id: trimmed-mean, options: { beta: 0.4 } }')).strategyOptions, { beta: 0.4 });
  assert.deepEqual(parse(plan('trimmed-mean')).strategyOptions, { beta: 0.2 }, 'the default, applied');
  refused(plan('{ id: trimmed-mean, options: { beta: 0.5 } }'), /^plan\.yaml:\d+: strategy\.options\.beta: .*0\.5/);
  refused(plan('{ id: trimmed-mean, options: { beta: -0.1 } }'), /^plan\.yaml:\d+: strategy\.options\.beta: /);
  refused(plan('{ id: trimmed-mean, options: { beta: "0.1" } }'), /^plan\.yaml:\d+: strategy\.options\.beta: /);
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

test('the proximal μ is a capability the strategy registry declares, not a comparison with the id fedprox', () => {
  const { strategies } = builtinRegistries;
  assert.equal(strategies.proximalMu('fedprox', { mu: 0.1 }), 0.1);
  assert.equal(strategies.proximalMu('fedprox', {}), 0.01, 'the default μ, applied');
  for (const id of strategies.ids().filter((i) => i !== 'fedprox')) {
    assert.equal(strategies.proximalMu(id, id === 'krum' ? { f: 1 } : id === 'multi-krum' ? { f: 1, m: 2 } : {}), 0, id);
  }
  // A registry with another strategy that declares μ: the edge side follows the declaration.
  const custom: StrategyRegistry = { ...strategies, ids: () => [...strategies.ids(), 'prox-median'], proximalMu: (id, options) => (id === 'prox-median' ? 0.25 : strategies.proximalMu(id, options)) };
  const plan = { name: 'toy', strategy: 'prox-median', strategyOptions: {}, app: { id: 'noop', options: {} } };
  assert.equal(proximalMuOf(plan, custom), 0.25);
  assert.equal(proximalMuOf({ ...plan, strategy: 'fedprox' }, { ...custom, proximalMu: () => 0 }), 0, 'fedprox by id alone asks for nothing');
  assert.match(proximalTermProblem(plan, 0.25, { architecture: 'noop/v1' })!, /^plan toy uses strategy prox-median \(μ = 0\.25\), but app noop \(noop\/v1\) cannot add the proximal term/);
  assert.equal(proximalTermProblem(plan, 0.25, { architecture: 'linear-toy/v1', appliesProximalTerm: true }), undefined);
});
