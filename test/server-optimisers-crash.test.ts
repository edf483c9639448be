/**
 * FedAdam across aggregator crashes: the aggregator process is SIGKILLed mid-run (after rounds
 * with optimiser state have been committed) and restarted; it resumes from the state in the global
 * head, so every merge — before and after each kill — audits bit for bit, state included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, startCli, exited, git, runCli, toyPlan, waitFor, sleep } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { whereUnder } from './helpers/chaos.js';
import { Repository } from '../operator/git/repository.js';
import { readFinalTag, readGlobalHead, readGlobalHistory } from '../operator/store/federation.js';
import { parseState, readStateFile } from '../operator/store/strategy-state.js';
import { auditCommit } from '../operator/commands/audit.js';
import { builtinRegistries } from '../bin/registries.js';
import { mulberry32 } from '../edge-app/random.js';

const ROUNDS = 6;
const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];

test('fedadam: SIGKILL the aggregator after rounds with state are committed; restarted, it resumes from the global head and every merge audits', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-optimiser-crash-');
  const yaml = `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length, epochDelayMs: 150 })}strategy: { id: fedadam, options: { eta: 0.05 } }\n`;
  const { plan, repos, where } = await setUpFederation(dir, yaml);
  const edges = EDGES.map((name) => startCli(['edge', '--name', name, '--repos', repos, '--exit-when-done'], { cwd: dir }));
  t.after(() => edges.forEach((e) => e.kill('SIGKILL')));
  const global = new Repository(where.global);
  const random = mulberry32(4321);
  const roundsAtKill: number[] = [];
  let aggregator = startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir });
  // Kill once each of rounds 1, 3 and 4 is in (and a random moment later), so the restarted aggregator must carry state on.
  for (const target of [1, 3, 4]) {
    const head = await waitFor(`round ${target}`, async () => {
      const h = await readGlobalHead(global, plan);
      return h && h.round >= target ? h : null;
    });
    if (head.round >= ROUNDS) break;
    await sleep(random() * 300);
    aggregator.kill('SIGKILL');
    await exited(aggregator);
    roundsAtKill.push((await readGlobalHead(global, plan))!.round);
    aggregator = startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir });
  }
  t.after(() => aggregator.kill('SIGKILL'));
  assert.equal(await exited(aggregator), 0, aggregator.output());
  for (const edge of edges) assert.equal(await exited(edge), 0, edge.output());
  t.diagnostic(`aggregator killed with the global head at rounds ${roundsAtKill.join(', ')}`);
  assert.ok(roundsAtKill.some((r) => r >= 1 && r < ROUNDS), `a kill landed mid-run after a merge with state (heads at kills: ${roundsAtKill.join(', ')})`);

  const history = await readGlobalHistory(global, plan);
  assert.deepEqual(history.map((r) => r.round), [0, 1, 2, 3, 4, 5, 6], 'every round exactly once');
  assert.equal(await readFinalTag(global, plan), history.at(-1)!.oid, 'the plan reached its tag');
  git(where.global, 'fsck', '--strict');
  for (const merge of history.slice(1)) {
    assert.equal(parseState((await readStateFile(global, merge.oid))!, `round ${merge.round}`).step, merge.round);
    const audit = await auditCommit(whereUnder(repos), builtinRegistries, merge.oid);
    assert.ok(audit.ok, `round ${merge.round}: ${audit.checks.filter((c) => !c.ok).map((c) => c.what).join('; ')}`);
  }
  const cli = await runCli(['audit', history.at(-1)!.oid, '--repos', repos], { cwd: dir });
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, /ok {3}recomputed fedadam optimiser state \(step 6, \d+ tensors\) matches the stored optimiser-state\.safetensors bit for bit/);
});
