/**
 * One edge on TensorFlow.js, one on PyTorch (an external command), in one plan
 * through `fedgit run`: the merges are correct because both sides agree on the
 * wire format, and every merge audits. Both edges register their scans and
 * compute aspects-region/v3 features (the PyTorch edge gets them through
 * $FEDGIT_FEATURES); elastix must be installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { tempDir, runCli, git } from './helpers/temp.js';
import { synthCohort } from '../edge-app/cohort/synth-cohort.js';
import { PYTHON, TORCH_SCRIPT } from './helpers/python.js';

const SCRIPT = TORCH_SCRIPT;

test('a TensorFlow.js edge and a PyTorch edge finish a plan together and every merge audits', async (t) => {
  const dir = await tempDir(t);
  for (const [edge, seed] of [['tfjs-site', 11], ['torch-site', 12]] as const) {
    await synthCohort({ outDir: path.join(dir, 'data', edge), count: 8, seed, matrix: 128 });
  }
  await writeFile(path.join(dir, 'plan.yaml'), `name: mixed
rounds: 2
edges: [tfjs-site, torch-site]
roundDeadline: 30m
seed: 5
app:
  id: aspects-cnn
  options: { batchSize: 4, learningRate: 0.003 }
`);
  await writeFile(path.join(dir, 'torch-site.yaml'), `role: edge
name: torch-site
repos: { root: repos }
data: data/torch-site
logs: logs
engine:
  command: [${JSON.stringify(PYTHON)}, ${JSON.stringify(SCRIPT)}]
  timeout: 5m
`);
  const run = await runCli(['run', 'plan.yaml', '--data-root', 'data', '--edge-config', 'torch-site=torch-site.yaml', '--timeout', '600'], { cwd: dir, timeoutMs: 660_000 });
  assert.equal(run.code, 0, run.stdout.slice(-3000) + run.stderr);
  const log = fs.readFileSync(path.join(dir, 'logs', 'torch-site.jsonl'), 'utf8');
  assert.match(log, /pushed [0-9a-f]{8}/, 'the PyTorch edge pushed its rounds');
  assert.match(log, /ASPECTS features of \d+ volumes ready for the external command/);
  // Features were computed once per volume and cached in the data folder.
  assert.ok(fs.readdirSync(path.join(dir, 'data', 'torch-site', '.fedgit-cache', 'aspects-region')).length >= 6);
  const global = path.join(dir, 'repos', 'global.git');
  const merges = git(global, 'log', '--format=%H %(trailers:key=Fedgit-Round,valueonly,separator=)', '--tags').trim().split('\n');
  assert.equal(merges.length, 3);
  for (const line of merges) {
    const [commit] = line.split(' ');
    const audit = await runCli(['audit', commit!], { cwd: dir });
    assert.equal(audit.code, 0, audit.stdout);
  }
  const round2 = git(global, 'log', '-1', '--format=%(trailers:key=Fedgit-Merged,valueonly,separator=|)', '--tags').trim();
  assert.deepEqual(round2.split('|').map((m) => m.split(' ')[0]), ['tfjs-site', 'torch-site']);
});
