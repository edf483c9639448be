/**
 * A FedProx federation end to end: `fedgit run` of a 3-round linear-toy plan with
 * `strategy: { id: fedprox, options: { mu: 0.1 } }` (real repositories, one process per
 * participant) reaches its tag; every merge names fedprox and passes `fedgit audit`; every edge
 * update says it was trained with μ = 0.1, which only the plan could have told the edge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir, runCli, git, writePlan, toyPlan } from './helpers/temp.js';

test('a 3-round fedprox toy plan runs to its tag and every merge audits', async (t) => {
  const dir = await tempDir(t);
  const planFile = await writePlan(dir, 'prox.yaml', `${toyPlan({ name: 'prox' })}strategy: { id: fedprox, options: { mu: 0.1 } }\n`);
  const run = await runCli(['run', planFile, '--timeout', '120'], { cwd: dir, timeoutMs: 150_000 });
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.match(run.stdout, /round 3\/3 merged/);

  const global = path.join(dir, 'repos', 'global.git');
  const tag = git(global, 'tag').trim();
  assert.match(tag, /^inference-prox-[0-9a-f]{8}$/);
  const history = git(global, 'log', '--format=%H%x09%(trailers:key=Fedgit-Round,valueonly,separator=)%x09%(trailers:key=Fedgit-Strategy,valueonly,separator=)', tag).trim().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(history.map((h) => h[1]), ['3', '2', '1', '0']);
  assert.deepEqual(history.filter((h) => h[1] !== '0').map((h) => h[2]), ['fedprox', 'fedprox', 'fedprox']);
  for (const [commit] of history) {
    const audit = await runCli(['audit', commit!], { cwd: dir });
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    assert.match(audit.stdout, /audit passed/);
  }

  for (const edge of ['hospital-a', 'hospital-b']) {
    const repo = path.join(dir, 'repos', `edge-${edge}.git`);
    const commits = git(repo, 'log', '--all', '--format=%H').trim().split('\n');
    assert.equal(commits.length, 3, `${edge}: one update per round`);
    for (const commit of commits) {
      const metrics = JSON.parse(git(repo, 'show', `${commit}:metrics.json`)) as { local?: { proximalMu?: number } };
      assert.equal(metrics.local?.proximalMu, 0.1, `${edge} ${commit}: ${JSON.stringify(metrics)}`);
    }
  }
});
