/**
 * `fedgit evaluate` as a real process: round-0 weights of a small grid model (aspects-cnn-v2, no
 * registration, nothing trained) on a tiny cohort, from a safetensors file and from a tag of a
 * real global repository (the plan read from the plan repository); and the one-line refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { runCli, tempDir } from './helpers/temp.js';
import { SYNTH_PROFILES, readLabelsCsv, synthCohort } from '../edge-app/cohort/index.js';
import { apps } from '../edge-app/registry.js';
import { renderSafetensors } from '../operator/checkpoint/safetensors.js';
import { Repository } from '../operator/git/repository.js';
import { REPO_DIRS, inferenceTag } from '../operator/git/names.js';
import { commitGlobalRound, commitPlan, tagFinal } from '../operator/store/federation.js';
import { parsePlan } from '../operator/plan/plan.js';
import type { EvaluationReport } from '../experiment/evaluate.js';

const PLAN = `name: tiny-eval
rounds: 1
epochsPerRound: 1
edges: [a, b]
roundDeadline: 10m
minEdges: 2
strategy: fedavg
seed: 3
app:
  id: aspects-cnn-v2
  options:
    grid: { depth: 8, height: 16, width: 16 }
`;

test('fedgit evaluate reports round-0 weights from a file and from a tag, and refuses what it cannot use in one line', async (t) => {
  const dir = await tempDir(t, 'fedgit-evaluate-');
  const data = path.join(dir, 'data');
  await synthCohort({ outDir: data, count: 5, seed: 12, matrix: 48, profile: SYNTH_PROFILES.aligned! });
  const rows = await readLabelsCsv(path.join(data, 'labels.csv'));
  const positives = rows.reduce((a, r) => a + r.labels.reduce((x, y) => x + y, 0), 0);

  const plan = parsePlan(PLAN, 'plan.yaml', { apps });
  const options = plan.app.options;
  const architecture = apps.architecture('aspects-cnn-v2', options);
  const initial = await apps.initialWeights('aspects-cnn-v2', options, 3);

  // 1. a file that names no plan: the app comes from its architecture, the options from --plan
  const planFile = path.join(dir, 'plan.yaml');
  await writeFile(planFile, PLAN);
  const file = path.join(dir, 'round0.safetensors');
  await writeFile(file, renderSafetensors(initial, { 'fedgit.architecture': architecture }));
  const r = await runCli(['evaluate', '--weights', file, '--data', 'data', '--plan', planFile, '--out', 'report'], { cwd: dir, timeoutMs: 180_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /\| 1 \(affected\) \|/);
  assert.match(r.stdout, /\| M6 \|/);
  const report = JSON.parse(await readFile(path.join(dir, 'report', 'evaluation.json'), 'utf8')) as EvaluationReport;
  assert.equal(report.kind, 'fedgit-evaluation/v1');
  assert.equal(report.sets.length, 1);
  const [set] = report.sets;
  assert.equal(set!.architecture, architecture);
  assert.equal(set!.volumes, 5);
  const m = set!.metrics as Record<string, any>;
  assert.equal(m.n, 5);
  assert.equal(m.classes['1'].support, positives, 'class-1 support = affected regions in labels.csv');
  assert.equal(m.classes['0'].support, 5 * 10 - positives);
  assert.deepEqual(Object.keys(m.regions), ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6']);
  for (const [region, v] of Object.entries(m.regions as Record<string, { positives: number; negatives: number }>)) {
    const k = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'].indexOf(region);
    assert.equal(v.positives, rows.filter((row) => row.labels[k] === 1).length, region);
    assert.equal(v.positives + v.negatives, 5);
  }
  for (const key of ['meanDifference', 'withinOnePercent', 'dichotomyAccuracy']) assert.equal(typeof m.aspects[key], 'number', key);
  assert.match(await readFile(path.join(dir, 'report', 'evaluation.md'), 'utf8'), /## Per region/);

  // 2. a tag of the global repository: the plan comes from the plan repository, the same numbers
  const repos = path.join(dir, 'repos');
  const planRepo = await Repository.ensureBare(path.join(repos, REPO_DIRS.plan));
  const { id } = await commitPlan(planRepo, PLAN, plan);
  const global = await Repository.ensureBare(path.join(repos, REPO_DIRS.global));
  const committed = { id, text: PLAN, plan };
  const commit = await commitGlobalRound(global, { plan: committed, round: 0, architecture, tensors: initial, parent: null, source: 'initial weights', metrics: {} });
  await tagFinal(global, committed, commit);
  const tagName = inferenceTag(plan.name, id).replace(/^refs\/tags\//, '');
  const byTag = await runCli(['evaluate', '--weights', tagName, '--data', 'data', '--repos', 'repos', '--out', 'by-tag'], { cwd: dir, timeoutMs: 180_000 });
  assert.equal(byTag.code, 0, `${byTag.stdout}\n${byTag.stderr}`);
  assert.match(byTag.stdout, /options from plan [0-9a-f]{8}/);
  const tagged = JSON.parse(await readFile(path.join(dir, 'by-tag', 'evaluation.json'), 'utf8')) as EvaluationReport;
  assert.match(tagged.sets[0]!.source, new RegExp(`^${commit} in `));
  assert.deepEqual(tagged.sets[0]!.metrics, set!.metrics, 'the same weights give the same report');

  // 3. refusals: one line, nothing evaluated
  await mkdir(path.join(dir, 'unlabelled'));
  const wrongShape = path.join(dir, 'wrong.safetensors');
  const other = await apps.initialWeights('aspects-cnn-v2', { ...options, grid: { depth: 16, height: 16, width: 16 } }, 3);
  await writeFile(wrongShape, renderSafetensors(other, { 'fedgit.architecture': architecture }));
  const foreign = path.join(dir, 'foreign.safetensors');
  await writeFile(foreign, renderSafetensors(initial, { 'fedgit.architecture': 'resnet/9' }));
  const cases: Array<{ args: string[]; message: RegExp }> = [
    { args: ['evaluate', '--weights', file, '--data', 'nowhere'], message: /nowhere: no such folder/ },
    { args: ['evaluate', '--weights', file, '--data', 'unlabelled'], message: /unlabelled: no labels\.csv/ },
    { args: ['evaluate', '--weights', wrongShape, '--data', 'data', '--plan', planFile], message: /wrong\.safetensors: tensor \S+ is \[.*\], aspects-cnn\/v2 \(\S*plan\.yaml\) needs \[.*\]/ },
    { args: ['evaluate', '--weights', foreign, '--data', 'data'], message: /foreign\.safetensors: architecture resnet\/9 is not one this fedgit evaluates/ },
    { args: ['evaluate', '--weights', 'missing.safetensors', '--data', 'data'], message: /evaluate: no weights file missing\.safetensors/ },
    { args: ['evaluate', '--weights', 'v9', '--data', 'data', '--repos', 'repos'], message: /v9 names no commit/ },
    { args: ['evaluate', '--data', 'data'], message: /evaluate: which weights\?/ },
  ];
  for (const c of cases) {
    const run = await runCli(c.args, { cwd: dir, timeoutMs: 60_000 });
    assert.notEqual(run.code, 0, c.args.join(' '));
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${c.args.join(' ')}: one line expected, got:\n${run.stderr}`);
    assert.match(lines[0]!, /^fedgit: /);
    assert.match(lines[0]!, c.message, c.args.join(' '));
  }
  await rm(path.join(dir, 'unlabelled'), { recursive: true });
});
