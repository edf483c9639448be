/**
 * The default job on tiny settings: `fedgit synth`, the cohort folders
 * (reuse, refusal), and `fedgit experiment` end to end — central training in
 * process, the federation through real `fedgit run` processes, both final
 * models on the test set — with the federated model better than round 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { runCli, tempDir } from './helpers/temp.js';
import { SYNTH_PROFILES, readLabelsCsv } from '../edge-app/cohort/index.js';
import { ensureCohort, experimentCohortParts, inspectCohortFolder } from '../experiment/cohort.js';
import type { ExperimentReport } from '../experiment/report.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TINY_PLAN = path.join(ROOT, 'config', 'aspects-tiny.yaml');

test('fedgit synth writes volumes and labels.csv', async (t) => {
  const dir = await tempDir(t, 'fedgit-synth-');
  const r = await runCli(['synth', '--out', 'cohort', '--count', '3', '--seed', '5', '--matrix', '64'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\[synth\] cohort: 3\/3 volumes/);
  const rows = await readLabelsCsv(path.join(dir, 'cohort', 'labels.csv'));
  assert.deepEqual(rows.map((row) => row.file), ['synth-0000.nii.gz', 'synth-0001.nii.gz', 'synth-0002.nii.gz']);
  const state = await inspectCohortFolder(path.join(dir, 'cohort'), { count: 3, seed: 5, matrix: 64, profile: SYNTH_PROFILES.mixed! });
  assert.equal(state.kind, 'complete');
  // the same folder asked for with another profile is ours but stale
  const other = await inspectCohortFolder(path.join(dir, 'cohort'), { count: 3, seed: 5, matrix: 64, profile: SYNTH_PROFILES.independent! });
  assert.equal(other.kind, 'stale');
});

test('the experiment cohort is generated once, reused, and never written over foreign data', async (t) => {
  const dir = await tempDir(t, 'fedgit-cohort-');
  const say = () => {};
  const parts = experimentCohortParts(path.join(dir, 'data'), { edges: ['a', 'b'], perEdge: 2, test: 2, dataSeed: 1, matrix: 48 });
  assert.equal(new Set(parts.map((p) => p.seed)).size, 3, 'a seed per folder');
  const first = await ensureCohort(parts, { say });
  assert.deepEqual(first.generated, ['a', 'b', 'test']);
  const labelsA = await readFile(path.join(dir, 'data', 'a', 'labels.csv'), 'utf8');
  const volumeA = await readFile(path.join(dir, 'data', 'a', 'synth-0000.nii.gz'));
  const volumeB = await readFile(path.join(dir, 'data', 'b', 'synth-0000.nii.gz'));
  assert.notDeepEqual(volumeA, volumeB, 'folders hold different volumes');
  const mtime = (await stat(path.join(dir, 'data', 'a', 'synth-0000.nii.gz'))).mtimeMs;

  const second = await ensureCohort(parts, { say });
  assert.deepEqual(second.generated, []);
  assert.deepEqual(second.reused, ['a', 'b', 'test']);
  assert.equal((await stat(path.join(dir, 'data', 'a', 'synth-0000.nii.gz'))).mtimeMs, mtime, 'not rewritten');

  // a cohort the user named (keepWritten): kept as written whatever it was written with, but an unfinished folder is redone
  const otherSeed = experimentCohortParts(path.join(dir, 'data'), { edges: ['a', 'b'], perEdge: 3, test: 2, dataSeed: 9, matrix: 48 });
  const kept = await ensureCohort(otherSeed, { say, keepWritten: true });
  assert.deepEqual(kept.generated, []);
  assert.deepEqual(kept.reused, ['a', 'b', 'test']);
  assert.equal((await stat(path.join(dir, 'data', 'a', 'synth-0000.nii.gz'))).mtimeMs, mtime, 'not rewritten');
  assert.equal(await readFile(path.join(dir, 'data', 'a', 'labels.csv'), 'utf8'), labelsA);

  // ours, but other settings: regenerated; an unfinished folder (no labels.csv) too
  const bigger = experimentCohortParts(path.join(dir, 'data'), { edges: ['a', 'b'], perEdge: 3, test: 2, dataSeed: 1, matrix: 48 });
  await writeFile(path.join(dir, 'data', 'test', 'labels.csv'), 'garbage');
  const third = await ensureCohort(bigger, { say });
  assert.deepEqual(third.generated, ['a', 'b', 'test']);
  assert.equal((await readLabelsCsv(path.join(dir, 'data', 'a', 'labels.csv'))).length, 3);
  assert.notEqual(await readFile(path.join(dir, 'data', 'a', 'labels.csv'), 'utf8'), labelsA);

  // a folder someone else filled, incomplete: refused, untouched
  const foreign = path.join(dir, 'foreign');
  await mkdir(path.join(foreign, 'a'), { recursive: true });
  await writeFile(path.join(foreign, 'a', 'scan.nii.gz'), 'not ours');
  const parts2 = experimentCohortParts(foreign, { edges: ['a'], perEdge: 2, test: 2, dataSeed: 1, matrix: 48 });
  await assert.rejects(ensureCohort(parts2, { say }), /foreign[/\\]a is not a complete cohort \(no labels\.csv\) and was not written by fedgit/);
  assert.deepEqual(await readdir(path.join(foreign, 'a')), ['scan.nii.gz']);
});

test('fedgit experiment on a tiny cohort: central and federated (fedgit run) both beat round 0 on the test set', async (t) => {
  const dir = await tempDir(t, 'fedgit-experiment-');
  const r = await runCli(
    ['experiment', '--plan', TINY_PLAN, '--data', 'data', '--work', 'work', '--per-edge', '10', '--test', '8', '--matrix', '128', '--rounds', '2', '--epochs-per-round', '2'],
    { cwd: dir, timeoutMs: 15 * 60_000 }, // registers 28 scans: minutes on a loaded 2-core machine
  );
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  // progress of every phase is visible
  assert.match(r.stdout, /\[synth\] 28\/28 volumes/);
  assert.match(r.stdout, /\[central\] epoch 4\/4: train loss/);
  assert.match(r.stdout, /\| \[run\] global round 2\/2/);
  assert.match(r.stdout, /\[experiment\] 4\/4 evaluation/);
  assert.match(r.stdout, /\| central \| 1 \(affected\) \|/);

  const report = JSON.parse(await readFile(path.join(dir, 'work', 'comparison.json'), 'utf8')) as ExperimentReport;
  assert.equal(report.settings.totalEpochs, 4);
  assert.deepEqual(report.settings.volumes, { train: { 'hospital-a': 10, 'hospital-b': 10 }, test: 8 });
  assert.equal(report.central.trainVolumes, 16, 'the union of the edges\' training splits (8 + 8)');
  const loss = (m: Record<string, unknown>) => m.loss as number;
  const { initial, central, federated } = report.test;
  assert.equal(initial.n, 8);
  assert.ok(loss(federated) < loss(initial), `federated test loss ${loss(federated)} < round 0's ${loss(initial)}`);
  assert.ok(loss(central) < loss(initial), `central test loss ${loss(central)} < round 0's ${loss(initial)}`);

  // the report sits next to the federated final weights too
  const besideWeights = path.dirname(report.federated.weights);
  assert.ok((await stat(report.federated.weights)).size > 0);
  assert.deepEqual(JSON.parse(await readFile(path.join(besideWeights, 'comparison.json'), 'utf8')), report);
  assert.match(await readFile(path.join(besideWeights, 'comparison.md'), 'utf8'), /## Per class \(pooled over the 10 regions\)/);
  assert.ok((await stat(report.central.weights)).size > 0);

  // per-scan predictions and example slices for the HTML report
  assert.equal(report.predictions?.scans.length, 8);
  assert.deepEqual(Object.keys(report.predictions!.probabilities), ['initial', 'central', 'federated']);
  assert.ok((report.examples ?? []).length > 0 && report.examples!.every((e) => e.slices.length === 2), 'example slices at both ASPECTS levels');

  // and the HTML report (fedgit report over the federation, with this comparison) next to both
  for (const folder of [path.join(dir, 'work'), besideWeights]) {
    const html = await readFile(path.join(folder, 'report.html'), 'utf8');
    assert.match(html, /<section id="experiment">/);
    assert.match(html, /all 3 global commits recomputed bit for bit/);
    assert.match(html, /<figure class="slice">/);
  }
  assert.match(r.stdout, /report\.html/);
});
