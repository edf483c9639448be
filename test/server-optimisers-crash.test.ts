/**
 * Each server optimiser across aggregator crashes: the aggregator process is SIGKILLed mid-run (after rounds
 * with optimiser state have been committed) and restarted; it resumes from the state in the global
 * head, so every merge — before and after each kill — audits bit for bit, state included.
 */
import { test, type TestContext } from 'node:test';
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

const ROUNDS = 5;
const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
const OPTIMISERS = [['fedadam', '{ eta: 0.05 }'], ['fedavgm', '{ eta: 1, beta: 0.9 }'], ['fedadagrad', '{ eta: 0.05 }'], ['fedyogi', '{ eta: 0.05 }']] as const;

for (const [id, options] of OPTIMISERS) {
  test(`${id}: SIGKILL the aggregator after rounds with state are committed; restarted, it resumes from the global head and every merge audits`, { timeout: 120_000 }, (t) => crashAndAudit(t, id, options));
}

async function crashAndAudit(t: TestContext, id: string, options: string): Promise<void> {
  const dir = await tempDir(t, 'fedgit-optimiser-crash-');
  const yaml = `${toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length, epochDelayMs: 150 })}strategy: { id: ${id}, options: ${options} }\n`;
  const { plan, repos, where } = await setUpFederation(dir, yaml);
  const edges = EDGES.map((name) => startCli(['edge', '--name', name, '--repos', repos, '--exit-when-done'], { cwd: dir }));
  t.after(() => edges.forEach((e) => e.kill('SIGKILL')));
  const global = new Repository(where.global);
  const random = mulberry32(4321);
  const roundsAtKill: number[] = [];
  let aggregator = startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir });
  // Kill once each of rounds 1, 2 and 3 is in (and a random moment later), so the restarted aggregator must carry state on.
  for (const target of [1, 2, 3]) {
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
  assert.deepEqual(history.map((r) => r.round), Array.from({ length: ROUNDS + 1 }, (_, i) => i), 'every round exactly once');
  assert.equal(await readFinalTag(global, plan), history.at(-1)!.oid, 'the plan reached its tag');
  git(where.global, 'fsck', '--strict');
  for (const merge of history.slice(1)) {
    assert.equal(parseState((await readStateFile(global, merge.oid))!, `round ${merge.round}`).step, merge.round);
    const audit = await auditCommit(whereUnder(repos), builtinRegistries, merge.oid);
    assert.ok(audit.ok, `round ${merge.round}: ${audit.checks.filter((c) => !c.ok).map((c) => c.what).join('; ')}`);
  }
  const cli = await runCli(['audit', history.at(-1)!.oid, '--repos', repos], { cwd: dir });
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, new RegExp(`ok {3}recomputed ${id} optimiser state \\(step ${ROUNDS}, \\d+ tensors\\) matches the stored optimiser-state\\.safetensors bit for bit`));
}
