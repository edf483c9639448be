/**
 * Two aggregator processes started by mistake on the same plan: the refs move only by
 * compare-and-swap, so they never both commit a round. The history stays linear with
 * each round exactly once, and every merge audits. Whether the two processes happen to race
 * depends on timing, so a second, in-process test forces the race: the loser's ref update
 * runs only after the winner has committed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, startCli, exited, git, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { fsckStrict, globalLog, inProcessAggregator, lockFiles, whereUnder } from './helpers/chaos.js';
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { createOpener, type RepositoryOpener } from '../operator/store/open-repository.js';
import { reposUnder } from '../operator/store/federation.js';
import type { Log } from '../operator/contracts.js';
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
  const conflicts = [one!, two!].map((out) => count(out, /the ref moved while writing \(another aggregator\?\)/g));
  assert.equal(commitsBy[0]! + commitsBy[1]!, ROUNDS + 1, `each round committed by exactly one aggregator (${commitsBy.join(' + ')})`);
  console.log(`chaos-two-aggregators: ${ROUNDS} rounds; aggregator 1 committed ${commitsBy[0]}, aggregator 2 committed ${commitsBy[1]}; lost compare-and-swap races: ${conflicts[0]} + ${conflicts[1]}; ${offBranch.length} losing commit objects left unreferenced (harmless); history linear, each round once, every merge audits`);
});

test('two aggregators racing for one commit: the loser\'s compare-and-swap fails, it commits nothing and re-reads', async (t) => {
  const dir = await tempDir(t, 'fedgit-race-');
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds: 2, edges: EDGES, minEdges: EDGES.length }));
  const branch = planBranch(plan.plan.name, plan.id);
  const winner = inProcessAggregator(repos, {}, builtinRegistries);
  // The loser has read the (empty) global branch and decided to commit round 0; just before its
  // ref update the winner commits round 0 in full.
  let raced = false;
  const opener = createOpener();
  const racing: RepositoryOpener = {
    open: (location) => opener.open(location),
    openExisting: (location) => opener.openExisting(location),
    markRemotesStale: () => opener.markRemotesStale(),
    async require(location, what) {
      const repo = await opener.require(location, what);
      if (location !== where.global) return repo;
      const updateRef = repo.updateRef.bind(repo);
      repo.updateRef = async (ref, next, expected) => {
        if (!raced) {
          raced = true;
          await winner.reconcile();
        }
        return updateRef(ref, next, expected);
      };
      return repo;
    },
  };
  const lines: string[] = [];
  const collect = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  const log: Log = { error: collect('error'), warn: collect('warn'), info: collect('info'), debug: collect('debug') };
  const loser = new AggregatorOperator({ locate: (edges) => reposUnder(repos, edges), open: racing, ...builtinRegistries, log });

  assert.deepEqual(await loser.reconcile(), { lookAgain: true }, 'a lost race asks to look again');
  assert.ok(raced, 'the winner committed between the loser\'s read and its ref update');
  assert.ok(lines.some((l) => /^warn the ref moved while writing \(another aggregator\?\)/.test(l)), lines.join('\n'));
  assert.ok(!lines.some((l) => /round 0 of \S+ committed/.test(l)), 'the loser does not claim the commit');
  assert.deepEqual(globalLog(where.global, branch).map((h) => h.round), ['0'], 'round 0 exactly once: the winner\'s');
  const head = git(where.global, 'rev-parse', branch).trim();
  await loser.reconcile();
  assert.equal(git(where.global, 'rev-parse', branch).trim(), head, 'looking again commits nothing new');
});
