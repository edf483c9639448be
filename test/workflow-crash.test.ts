/** Killing the aggregator mid-run and starting it again finishes the plan with no round merged twice. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, startCli, exited, git, runCli, toyPlan, waitFor, sleep } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { Repository } from '../operator/git/repository.js';
import { readGlobalHead } from '../operator/store/federation.js';
import { mulberry32 } from '../edge-app/random.js';

test('SIGKILL the aggregator at random moments; restarted, it finishes with every round exactly once', async (t) => {
  const dir = await tempDir(t);
  const rounds = 5;
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds, epochDelayMs: 150 }));
  const edges = ['hospital-a', 'hospital-b'].map((name) => startCli(['edge', '--name', name, '--repos', repos, '--exit-when-done'], { cwd: dir }));
  t.after(() => edges.forEach((e) => e.kill('SIGKILL')));
  const global = new Repository(where.global);
  const random = mulberry32(1234);
  let kills = 0;
  let aggregator = startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir });
  while (kills < 4) {
    await sleep(100 + random() * 400);
    const head = await readGlobalHead(global, plan);
    if (head && head.round >= rounds) break;
    aggregator.kill('SIGKILL');
    await exited(aggregator);
    kills++;
    aggregator = startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir });
  }
  t.after(() => aggregator.kill('SIGKILL'));
  assert.ok(kills >= 2, `killed ${kills} times`);
  assert.equal(await exited(aggregator), 0, aggregator.output());
  for (const edge of edges) assert.equal(await exited(edge), 0, edge.output());

  const roundsSeen = git(where.global, 'log', '--format=%(trailers:key=Fedgit-Round,valueonly,separator=)', `refs/heads/fedgit/toy-${plan.id.slice(0, 8)}`).trim().split('\n');
  assert.deepEqual(roundsSeen, ['5', '4', '3', '2', '1', '0']);
  git(where.global, 'fsck', '--strict');
  for (const gitdir of Object.values(where.edges)) git(gitdir, 'fsck', '--strict');
  const head = await waitFor('final head', () => readGlobalHead(global, plan));
  const audit = await runCli(['audit', head.oid, '--repos', repos], { cwd: dir });
  assert.equal(audit.code, 0, audit.stdout);
});
