/** End to end on one machine: `fedgit run` with real repositories and operator processes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tempDir, runCli, git, writePlan, toyPlan } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { parseSafetensors, renderSafetensors } from '../operator/checkpoint/safetensors.js';

test('a 2-edge, 3-round run ends with the tag and exactly 3 merges naming both edges; every merge audits', async (t) => {
  const dir = await tempDir(t);
  const planFile = await writePlan(dir, 'toy.yaml', toyPlan());
  const run = await runCli(['run', planFile, '--timeout', '90'], { cwd: dir });
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /Final weights: .*global\.git at [0-9a-f]{40}/);
  assert.match(run.stdout, /round 3\/3 merged/);

  const gitdir = path.join(dir, 'repos', 'global.git');
  const tags = git(gitdir, 'tag').trim().split('\n');
  assert.equal(tags.length, 1);
  assert.match(tags[0]!, /^inference-toy-[0-9a-f]{8}$/);
  const history = git(gitdir, 'log', '--format=%H%x09%(trailers:key=Fedgit-Round,valueonly,separator=)%x09%(trailers:key=Fedgit-Merged,valueonly,separator=|)', tags[0]!).trim().split('\n');
  assert.equal(history.length, 4, 'round 0 + 3 merges');
  const merges = history.filter((line) => line.split('\t')[1] !== '0');
  assert.equal(merges.length, 3);
  assert.deepEqual(merges.map((l) => l.split('\t')[1]), ['3', '2', '1']);
  for (const line of merges) {
    const merged = line.split('\t')[2]!.split('|');
    assert.deepEqual(merged.map((m) => m.split(' ')[0]), ['hospital-a', 'hospital-b']);
  }
  git(gitdir, 'fsck', '--strict');
  const exported = run.stdout.match(/exported to (\S+)/)![1]!;
  assert.ok(existsSync(path.resolve(dir, exported)));

  for (const line of history) {
    const commit = line.split('\t')[0]!;
    const audit = await runCli(['audit', commit], { cwd: dir });
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    assert.match(audit.stdout, /audit passed/);
  }

  // A merge whose weights were altered by hand fails the audit.
  const repo = new Repository(gitdir);
  const final = merges[0]!.split('\t')[0]!;
  const original = await repo.readCommit(final);
  const checkpoint = parseSafetensors(await repo.readFile(final, 'weights.safetensors'));
  const tampered = new Map(checkpoint.tensors);
  const w = tampered.get('linear.weight')!;
  const data = Float32Array.from(w.data);
  data[0] = data[0]! + 1e-6;
  tampered.set('linear.weight', { shape: w.shape, data });
  const forged = await repo.writeCommit({
    files: { 'weights.safetensors': renderSafetensors(tampered, { ...checkpoint.metadata }), 'metrics.json': await repo.readFile(final, 'metrics.json') },
    parents: original.parents,
    message: original.message,
    author: original.author,
  });
  const audit = await runCli(['audit', forged], { cwd: dir });
  assert.equal(audit.code, 1, audit.stdout);
  assert.match(audit.stdout, /FAIL recomputed fedavg over 2 updates matches the stored weights/);

  // log shows the rounds from git alone.
  const log = await runCli(['log'], { cwd: dir });
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, /3\/3 rounds/);
  assert.equal((log.stdout.match(/hospital-a:100 hospital-b:100/g) ?? []).length, 3);

  const status = await runCli(['status'], { cwd: dir });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /aggregator: finished at round 3 .*tagged inference-toy-/);
  assert.match(status.stdout, /hospital-a\s+3\s+[0-9a-f]{8}\s+done/);
  assert.match(status.stdout, /storage: global repository [\d.]+ [KMG]B \(~[\d.]+ [KMG]B per global commit of 4\), 0 KB of it packed; edge repositories [\d.]+ [KMG]B together/);

  // One JSON-lines log per participant.
  for (const participant of ['aggregator', 'hospital-a', 'hospital-b']) {
    const lines = (await readFile(path.join(dir, 'logs', `${participant}.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length > 3);
    assert.ok(lines.every((l) => l.participant === participant && typeof l.message === 'string' && typeof l.timestamp === 'string'));
  }

  // A second run of the same plan resumes it: nothing new is written.
  const headBefore = git(gitdir, 'rev-parse', tags[0]!).trim();
  const again = await runCli(['run', planFile, '--timeout', '60'], { cwd: dir });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /unchanged, resuming/);
  assert.equal(git(gitdir, 'rev-parse', tags[0]!).trim(), headBefore);
  assert.ok((await readFile(path.resolve(dir, exported))).length > 0);
});

test('a malformed plan is refused with file, line and field, and nothing is written', async (t) => {
  const dir = await tempDir(t);
  const cases: Array<[string, RegExp]> = [
    [toyPlan().replace('rounds: 3', 'rounds: three'), /bad\.yaml:2: rounds: .*number/i],
    [toyPlan().replace('seed: 42', 'seed: 42\ncolour: blue'), /bad\.yaml:\d+: \(top level\): unknown field 'colour'/],
    [toyPlan().replace('minEdges: 1', 'minEdges: 5'), /bad\.yaml:5: minEdges: is 5 but the plan has only 2 edges/],
    [toyPlan({ edges: ['a', 'a'] }), /bad\.yaml:3: edges\[1\]: duplicate edge name 'a'/],
    [toyPlan({ edges: ['../etc'] }), /edges\[0\]: must be 1–63 lowercase/],
    [toyPlan().replace('features: 8', 'features: -1'), /bad\.yaml:10: app\.options\.features: Too small/],
    [toyPlan().replace('linear-toy', 'resnet-9000'), /app\.id: unknown app 'resnet-9000'/],
    [toyPlan().replace('roundDeadline: 10m', 'roundDeadline: soon'), /roundDeadline: must be a duration/],
    ['name: [unclosed', /bad\.yaml:1: invalid YAML/],
  ];
  for (const [yaml, expected] of cases) {
    await writePlan(dir, 'bad.yaml', yaml);
    const result = await runCli(['run', 'bad.yaml'], { cwd: dir });
    assert.equal(result.code, 3, `${expected}: ${result.stderr}`);
    assert.match(result.stderr, expected);
    assert.equal(result.stderr.trim().split('\n').length, 1, 'one clear line');
    assert.ok(!existsSync(path.join(dir, 'repos', 'plan.git')), 'no repository was created');
  }
});
