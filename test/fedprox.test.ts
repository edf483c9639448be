/**
 * FedProx (Li et al., MLSys 2020; docs/fedprox.md): the proximal step of the toy app by hand, the
 * same term in the toy app's real training, the plan's `fedprox` strategy (options, FedAvg's merge
 * under its own name), and an edge whose app cannot apply μ refusing the plan with a clear line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toySgdStep, createLinearToyApp, LinearToyOptions, type ToyParams } from '../edge-app/toy/linear-toy.js';
import { parsePlan } from '../operator/plan/plan.js';
import { PlanInvalid } from '../operator/errors.js';
import { builtinRegistries } from '../bin/registries.js';
import { fedAvgStrategy } from '../aggregator-app/fedavg.js';
import { proximalMuOf, proximalTermProblem } from '../operator/reconcile/proximal-term.js';
import { EdgeOperator } from '../operator/reconcile/edge-operator.js';
import { createOpener } from '../operator/store/open-repository.js';
import { reposUnder } from '../operator/store/federation.js';
import { Repository } from '../operator/git/repository.js';
import type { Tensors, TrainRequest, Update } from '../operator/contracts.js';
import { tempDir, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { inProcessAggregator } from './helpers/chaos.js';

const { apps, strategies } = builtinRegistries;
const params = (w: number[], b: number): ToyParams => ({ w: Float64Array.from(w), b });

test('toy proximal step by hand: μ·(θ − θ_global) is added to the gradient, so the step ends lr·μ·|θ − θ_global| nearer the global model', () => {
  // One sample x = 2, y = 1; θ = (w 1, b 0.4), θ_global = (w 0, b 0.1), lr 0.5, μ 0.1.
  // z = 0.4 + 2·1 = 2.4, σ(z) − y = 0.9168273035060777 − 1 = −0.0831727…; ∂w = 2·(−0.0831727…), ∂b = −0.0831727….
  const batch = { x: [[2]], y: [1] };
  const global = params([0], 0.1);
  const plain = params([1], 0.4);
  toySgdStep(plain, global, batch, 0.5, 0);
  assert.ok(Math.abs(plain.w[0]! - 1.0831726964939223) < 1e-15, `plain w ${plain.w[0]}`);
  assert.ok(Math.abs(plain.b - 0.4415863482469612) < 1e-15, `plain b ${plain.b}`);
  const prox = params([1], 0.4);
  toySgdStep(prox, global, batch, 0.5, 0.1);
  // The extra move −lr·μ·(θ − θ_global): w −0.5·0.1·(1 − 0) = −0.05, b −0.5·0.1·(0.4 − 0.1) = −0.015.
  assert.ok(Math.abs(prox.w[0]! - 1.0331726964939223) < 1e-15, `prox w ${prox.w[0]}`);
  assert.ok(Math.abs(prox.b - 0.4265863482469612) < 1e-15, `prox b ${prox.b}`);
  assert.ok(Math.abs(prox.w[0]! - global.w[0]!) < Math.abs(plain.w[0]! - global.w[0]!));
  assert.ok(Math.abs(prox.b - global.b) < Math.abs(plain.b - global.b));
  // At θ = θ_global the term has no gradient: the first step of a round is FedAvg's.
  const atGlobal = params([0], 0.1);
  const atGlobalPlain = params([0], 0.1);
  toySgdStep(atGlobal, global, batch, 0.5, 0.1);
  toySgdStep(atGlobalPlain, global, batch, 0.5, 0);
  assert.deepEqual([atGlobal.w[0], atGlobal.b], [atGlobalPlain.w[0], atGlobalPlain.b]);
});

test('the toy app trains with request.proximalMu: after two full-batch steps it differs from μ = 0 by exactly −lr·μ·(θ₁ − θ_global)', async () => {
  const options = LinearToyOptions.parse({ features: 4, samplesPerEdge: 40, batchSize: 40, learningRate: 0.5 });
  const app = createLinearToyApp(options, 'hospital-a');
  const global: Tensors = new Map([
    ['linear.bias', { shape: [1], data: Float32Array.of(0.05) }],
    ['linear.weight', { shape: [1, 4], data: Float32Array.of(0.1, -0.2, 0.3, 0) }],
  ]);
  const request = (epochs: number, proximalMu?: number): TrainRequest => ({
    weights: global, epochs, round: 1, planId: 'p', seed: 3, signal: new AbortController().signal, ...(proximalMu !== undefined ? { proximalMu } : {}),
  });
  const flat = (t: Tensors) => [...t.get('linear.weight')!.data, t.get('linear.bias')!.data[0]!];
  const first = flat((await app.train(request(1))).weights); // θ₁: one step; the term is 0 at θ_global
  const plain = await app.train(request(2));
  const prox = await app.train(request(2, 0.1));
  const zero = await app.train(request(2, 0));
  assert.deepEqual(flat(zero.weights), flat(plain.weights), 'μ = 0 is plain SGD, bit for bit');
  const g = flat(global);
  flat(prox.weights).forEach((v, i) => {
    const expected = flat(plain.weights)[i]! - 0.5 * 0.1 * (first[i]! - g[i]!);
    assert.ok(Math.abs(v - expected) < 2e-7, `θ[${i}] = ${v}, expected ${expected}`);
  });
  const distance = (t: Tensors) => Math.hypot(...flat(t).map((v, i) => v - g[i]!));
  assert.ok(distance(prox.weights) < distance(plain.weights), `‖θ − θ_global‖: FedProx ${distance(prox.weights)}, FedAvg ${distance(plain.weights)}`);
  assert.equal(prox.metrics.local.proximalMu, 0.1, 'the edge commit records the μ it trained with');
  assert.equal(plain.metrics.local.proximalMu, undefined);
  assert.equal(app.appliesProximalTerm, true);
});

const plan = (strategy: string, extra = '') => `${toyPlan()}strategy: ${strategy}\n${extra}`;
const parse = (text: string) => parsePlan(text, 'plan.yaml', { apps, strategies });

test('strategy fedprox in a plan: μ ≥ 0 checked with file:line, default 0.01; the merge is FedAvg (dataset-size weights) under the name fedprox', () => {
  assert.deepEqual(parse(plan('{ id: fedprox, options: { mu: 0.1 } }')).strategyOptions, { mu: 0.1 });
  assert.deepEqual(parse(plan('{ id: fedprox }')).strategyOptions, { mu: 0.01 });
  assert.deepEqual(parse(plan('fedprox')).strategyOptions, { mu: 0.01 });
  assert.deepEqual(parse(plan('{ id: fedprox, options: { mu: 0 } }')).strategyOptions, { mu: 0 });
  assert.equal(parse(plan('{ id: fedprox, options: { mu: 1 } }', 'maxShare: 0.6\n')).maxShare, 0.6, 'maxShare bounds its dataset-size weights');
  const refused = (text: string, pattern: RegExp) => assert.throws(() => parse(text), (e: unknown) => e instanceof PlanInvalid && pattern.test(e.message));
  refused(plan('{ id: fedprox, options: { mu: -0.1 } }'), /^plan\.yaml:\d+: strategy\.options\.mu: /);
  refused(plan('{ id: fedprox, options: { mu: abc } }'), /^plan\.yaml:\d+: strategy\.options\.mu: /);
  refused(plan('{ id: fedprox, options: { mu: 0.1, lr: 1 } }'), /^plan\.yaml:\d+: strategy\.options/);

  const strategy = strategies.get('fedprox', { mu: 0.1 });
  assert.equal(strategy.name, 'fedprox', 'the merge trailer and audit name the plan\'s strategy');
  assert.equal(strategies.weighsByDatasetSize('fedprox'), true);
  const update = (edge: string, w: number[], datasetSize: number): Update => ({ edge, datasetSize, tensors: new Map([['w', { shape: [2], data: Float32Array.from(w) }]]) });
  const updates = [update('b', [4, 0], 3), update('a', [0, 8], 1)];
  const previous: Tensors = new Map([['w', { shape: [2], data: new Float32Array(2) }]]);
  assert.deepEqual(strategy.weights(updates), [0.75, 0.25]);
  assert.deepEqual([...strategy.aggregate(updates, previous).get('w')!.data], [3, 2]); // 0.75·4 + 0.25·0, 0.75·0 + 0.25·8
  assert.deepEqual(strategy.aggregate(updates, previous), fedAvgStrategy.aggregate(updates, previous));
});

test('μ reaches the edge only for fedprox; an app without the proximal term is refused for μ > 0 only', () => {
  assert.equal(proximalMuOf(parse(plan('{ id: fedprox, options: { mu: 0.1 } }')), strategies), 0.1);
  assert.equal(proximalMuOf(parse(plan('fedprox')), strategies), 0.01);
  assert.equal(proximalMuOf(parse(plan('fedavg')), strategies), 0);
  assert.equal(proximalMuOf(parse(plan('median')), strategies), 0);
  const noop = { architecture: 'noop/v1' };
  const toy = { architecture: 'linear-toy/v1', appliesProximalTerm: true };
  const p = { name: 'toy', app: { id: 'noop', options: {} } };
  assert.equal(proximalTermProblem(p, 0, noop), undefined);
  assert.equal(proximalTermProblem(p, 0.1, toy), undefined);
  assert.match(proximalTermProblem(p, 0.1, noop)!, /^plan toy uses strategy fedprox \(μ = 0\.1\), but app noop \(noop\/v1\) cannot add the proximal term to its loss; not training this plan/);
});

test('an edge whose app cannot apply μ does not train a fedprox plan: one clear error line, nothing pushed, it waits for the next plan', async (t) => {
  const dir = await tempDir(t);
  const yaml = 'name: prox-noop\nrounds: 1\nedges: [hospital-a]\nseed: 1\nstrategy: { id: fedprox, options: { mu: 0.1 } }\napp:\n  id: noop\n  options: { sizeBytes: 64 }\n';
  const { repos, where } = await setUpFederation(dir, yaml);
  await inProcessAggregator(repos, {}, builtinRegistries).reconcile(); // round 0: the edge has work at once
  const lines: { level: string; message: string }[] = [];
  const log = {
    error: (message: string) => void lines.push({ level: 'error', message }),
    warn: (message: string) => void lines.push({ level: 'warn', message }),
    info: (message: string) => void lines.push({ level: 'info', message }),
    debug: () => undefined,
  };
  let finished: () => void = () => undefined;
  const trained = new Promise<void>((resolve) => (finished = resolve));
  const edge = new EdgeOperator({
    edge: 'hospital-a', locate: (edges) => reposUnder(repos, edges), open: createOpener(), apps, strategies,
    engine: { kind: 'builtin' }, dataDir: undefined, log, trigger: () => finished(),
  });
  t.after(() => edge.stop());
  await edge.open();
  await edge.reconcile(); // starts the round in the background
  await trained;
  const errors = lines.filter((l) => l.level === 'error').map((l) => l.message);
  assert.deepEqual(errors, ['plan prox-noop uses strategy fedprox (μ = 0.1), but app noop (noop/v1) cannot add the proximal term to its loss; not training this plan (use an app that applies it — linear-toy, aspects-cnn, an external command — or strategy fedavg)']);
  assert.equal(await edge.reconcile(), undefined, 'the next look waits instead of training again');
  assert.equal(lines.filter((l) => /training/.test(l.message) && l.level !== 'error' && /from/.test(l.message)).length, 1, 'training was started once');
  const own = new Repository(where.edges['hospital-a']!);
  assert.equal((await own.listRefs('refs/')).size, 0, 'nothing pushed');
});
