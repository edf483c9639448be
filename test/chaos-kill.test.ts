/**
 * Chaos: a federation of separate aggregator and edge processes on one machine, with a
 * seeded schedule that SIGKILLs a random participant at random moments (some at random,
 * some right after the global model moves, some right when an edge pushes, some timed to
 * land on an edge's commit) and restarts it after a short random delay. The plan must
 * finish with every round exactly once, every merge auditing, every repository passing
 * `git fsck --strict`, no lock left behind and no edge update merged twice.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { watch } from 'node:fs';
import { tempDir, startCli, exited, git, runCli, toyPlan, sleep } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { fsckStrict, globalLog, inProcessAggregator, whereUnder, lockFiles, seeded, tempObjects, unreachableObjects, Tally } from './helpers/chaos.js';
import { Repository } from '../operator/git/repository.js';
import { planBranch, inferenceTag } from '../operator/git/names.js';
import { commitEdgeUpdate, readEdgeHistory, readFinalTag, readGlobalHead, readWeights } from '../operator/store/federation.js';
import { auditCommit } from '../operator/commands/audit.js';
import { builtinRegistries } from '../bin/registries.js';

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
/**
 * Enough rounds that a plan usually outlasts MAX_KILLS kills: every round takes at least
 * EPOCH_DELAY_MS of wall-clock training, whatever the CPU, while a kill comes at most every ~0.5 s.
 * Should a plan still finish first (a slow or loaded machine), another federation takes the rest
 * of the kills, so every run delivers at least MIN_KILLS whatever the machine's speed.
 */
const ROUNDS = 24;
const EPOCH_DELAY_MS = 400;
const SEED = Number(process.env.FEDGIT_CHAOS_SEED ?? 20240611);
const MIN_KILLS = 20;
const MAX_KILLS = 36;
const BUDGET_MS = 150_000;

test(`SIGKILL random participants at random moments (seed ${SEED}); the plan finishes and loses nothing`, { timeout: 600_000 }, async (t) => {
  const tally = new Tally();
  let failed = false;
  for (let campaign = 0; !failed && tally.get('kills') < MIN_KILLS; campaign++) {
    const seed = SEED + campaign;
    await t.test(`federation ${campaign + 1} (seed ${seed}), ${MIN_KILLS - tally.get('kills')} or more kills to go`, (st) =>
      chaosCampaign(st, seed, MAX_KILLS - tally.get('kills'), tally).catch((e: unknown) => ((failed = true), Promise.reject(e))));
  }
});

/** One federation under chaos until its plan finishes or `killBudget` kills land; checks everything and counts into `tally`. */
async function chaosCampaign(t: TestContext, seed: number, killBudget: number, tally: Tally): Promise<void> {
  const dir = await tempDir(t, 'fedgit-chaos-kill-');
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds: ROUNDS, edges: EDGES, minEdges: EDGES.length, epochDelayMs: EPOCH_DELAY_MS }));
  const logs = path.join(dir, 'logs');
  const branch = planBranch(plan.plan.name, plan.id);
  const global = new Repository(where.global);
  const edgeRepos = Object.fromEntries(EDGES.map((e) => [e, new Repository(where.edges[e]!)]));
  const ownRepo = (name: string) => (name === 'aggregator' ? where.global : where.edges[name]!);
  const chaos = seeded(seed);
  const killsBefore = tally.get('kills');
  const started = Date.now();

  // ---- the participants ----
  const argsOf = (name: string) => (name === 'aggregator'
    ? ['aggregator', '--repos', repos, '--logs', logs, '--exit-when-done']
    : ['edge', '--name', name, '--repos', repos, '--logs', logs, '--exit-when-done']);
  const running = new Map<string, ReturnType<typeof startCli>>();
  const restarting = new Set<Promise<void>>();
  const all: Array<ReturnType<typeof startCli>> = [];
  const start = (name: string) => {
    const child = startCli(argsOf(name), { cwd: dir });
    running.set(name, child);
    all.push(child);
  };
  t.after(() => all.forEach((c) => c.kill('SIGKILL')));
  for (const name of ['aggregator', ...EDGES]) start(name);

  // ---- what git says at the moment of a kill ----
  const done = async () => (await readFinalTag(global, plan)) !== null;
  const branchValue = (name: string) => (name === 'aggregator' ? global : edgeRepos[name]!).readRef(branch);
  const phaseBeforeKill = async (name: string): Promise<string> => {
    const head = await readGlobalHead(global, plan);
    if (name === 'aggregator') {
      if (!head) return 'init';
      if (head.round >= ROUNDS) return 'tagging';
      const pushed = await Promise.all(EDGES.map(async (e) => (await readEdgeHistory(edgeRepos[e]!, plan, 4)).some((r) => r.base === head.oid)));
      return pushed.every(Boolean) ? 'merging' : 'waiting for updates';
    }
    if (!head || head.round >= ROUNDS) return 'idle';
    const own = await readEdgeHistory(edgeRepos[name]!, plan, 4);
    return own.some((r) => r.base === head.oid) ? 'pushed, waiting' : 'training';
  };
  const unreachable = new Map<string, Set<string>>();
  for (const name of ['aggregator', ...EDGES]) unreachable.set(name, new Set());

  const kill = async (name: string, why: string) => {
    const child = running.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return false;
    const phase = await phaseBeforeKill(name);
    const refBefore = await branchValue(name);
    child.kill('SIGKILL');
    await exited(child);
    running.delete(name);
    // Objects written but not reachable, or a half-written object or lock: the kill landed inside a commit.
    const gitdir = ownRepo(name);
    const now = unreachableObjects(gitdir);
    const fresh = [...now].filter((o) => !unreachable.get(name)!.has(o));
    unreachable.set(name, now);
    const leftovers = [...(await tempObjects(gitdir)), ...(await lockFiles(gitdir))];
    const refAfter = await branchValue(name);
    const finalPhase = fresh.length > 0 || leftovers.length > 0 ? 'mid-commit' : refAfter !== refBefore ? `${phase} (ref just moved)` : phase;
    tally.add('kills');
    tally.add(`kills.role.${name === 'aggregator' ? 'aggregator' : 'edge'}`);
    tally.add(`kills.phase.${finalPhase}`);
    tally.add(`kills.trigger.${why}`);
    if (leftovers.length) tally.add('leftover files seen right after a kill', leftovers.length);
    const restart = (async () => {
      await sleep(chaos.between(50, 600));
      start(name);
      tally.add('restarts');
    })();
    restarting.add(restart);
    void restart.finally(() => restarting.delete(restart));
    return true;
  };

  // ---- the schedule ----
  const watchUntilChange = async (read: () => Promise<string>, timeoutMs: number) => {
    const before = await read();
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      await sleep(4);
      if ((await read()) !== before) return true;
    }
    return false;
  };
    const globalRef = async () => (await global.readRef(branch)) ?? '';
  const alive = () => [...running.keys()];

  const objectWriteStarts = (gitdir: string, timeoutMs: number) =>
    new Promise<boolean>((resolve) => {
      const watcher = watch(path.join(gitdir, 'objects'), { recursive: true }, () => finish(true));
      const timer = setTimeout(() => finish(false), timeoutMs);
      function finish(seen: boolean) {
        clearTimeout(timer);
        watcher.close();
        resolve(seen);
      }
    });
  const allUpdatesIn = async () => {
    const head = await readGlobalHead(global, plan);
    if (!head || head.round >= ROUNDS) return false;
    for (const e of EDGES) if ((await readEdgeHistory(edgeRepos[e]!, plan, 1))[0]?.base !== head.oid) return false;
    return true;
  };
  const waitUntil = async (probe: () => Promise<boolean>, timeoutMs: number) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (await probe()) return true;
      await sleep(3);
    }
    return false;
  };

  while (tally.get('kills') - killsBefore < killBudget && !(await done())) {
    if (Date.now() - started > BUDGET_MS) {
      const head = await readGlobalHead(global, plan);
      assert.fail(`chaos budget exceeded at global round ${head?.round ?? 'none'} after ${JSON.stringify(tally.entries())}; last lines of every participant:\n${[...running].map(([n, c]) => `--- ${n}\n${c.output().split('\n').slice(-6).join('\n')}`).join('\n')}`);
    }
    const mode = chaos.random();
    if (mode < 0.35) {
      await sleep(chaos.between(50, 450));
      if (alive().length) await kill(chaos.pick(alive()), 'random moment');
    } else if (mode < 0.55) {
      // Right after the global model moves: an edge is reading weights and starting to train, the aggregator may be tagging.
      if (await watchUntilChange(globalRef, 4_000)) await kill(chaos.pick(['aggregator', ...EDGES]), 'global ref moved');
    } else if (mode < 0.8) {
      // Right when the last edge pushes: the aggregator is merging.
      if (await waitUntil(allUpdatesIn, 4_000)) {
        await sleep(chaos.between(0, 15));
        await kill('aggregator', 'last update pushed');
      }
    } else if (mode < 0.9) {
      // Timed to land on an edge's commit: training takes EPOCH_DELAY_MS after the global model moves.
      if (await watchUntilChange(globalRef, 4_000)) {
        await sleep(EPOCH_DELAY_MS + chaos.between(0, 120));
        await kill(chaos.pick(EDGES), 'edge commit timing');
      }
    } else {
      // The moment a participant starts writing objects: the kill lands inside its commit.
      const victim = chaos.pick(['aggregator', ...EDGES]);
      if (await objectWriteStarts(ownRepo(victim), 4_000)) await kill(victim, 'object write started');
    }
  }
  await Promise.all([...restarting]);

  // ---- every participant's last incarnation finishes on its own ----
  for (const [name, child] of running) {
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited(child), new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), 90_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, `${name} did not finish cleanly (${code}):\n${child.output().slice(-3000)}`);
  }
  const wallSeconds = (Date.now() - started) / 1000;

  // ---- the plan finished, each round exactly once ----
  const tag = await readFinalTag(global, plan);
  assert.ok(tag, 'the final tag exists');
  assert.equal(tag, await global.readRef(branch), 'the tag is the head of the plan branch');
  assert.equal(git(where.global, 'rev-parse', inferenceTag(plan.plan.name, plan.id)).trim(), tag);
  const history = globalLog(where.global, branch);
  assert.deepEqual(history.map((h) => h.round), Array.from({ length: ROUNDS + 1 }, (_, i) => String(ROUNDS - i)), 'rounds N..0, no gaps, no duplicates');
  assert.equal(git(where.global, 'rev-list', '--count', branch).trim(), String(ROUNDS + 1), 'a linear history of N+1 commits');

  // ---- nothing lost, nothing merged twice ----
  const mergedCommits: string[] = [];
  for (const h of history.filter((x) => x.round !== '0')) {
    assert.deepEqual(h.merged.map((m) => m.split(' ')[0]), EDGES, `round ${h.round} merged every edge`);
    assert.deepEqual(h.rejected, [], `round ${h.round} rejected nothing`);
    mergedCommits.push(...h.merged.map((m) => m.split(' ')[1]!));
  }
  assert.equal(new Set(mergedCommits).size, mergedCommits.length, 'no edge update merged twice');
  assert.equal(mergedCommits.length, ROUNDS * EDGES.length);

  // ---- every commit audits ----
  const registries = builtinRegistries;
  const whereRepos = whereUnder(repos);
  for (const h of history) {
    const report = await auditCommit(whereRepos, registries, h.oid);
    assert.ok(report.ok, `audit of round ${h.round} ${h.oid}: ${JSON.stringify(report.checks)}`);
  }
  const cliAudit = await runCli(['audit', tag!, '--repos', repos], { cwd: dir });
  assert.equal(cliAudit.code, 0, cliAudit.stdout + cliAudit.stderr);

  // ---- the repositories are sound and nothing blocks further work ----
  for (const gitdir of [where.plan, where.global, ...Object.values(where.edges)]) fsckStrict(gitdir);
  assert.deepEqual(await lockFiles(repos), [], 'no .lock file left behind');
  for (const [gitdir, ref] of [[where.global, branch], [where.global, inferenceTag(plan.plan.name, plan.id)], ...EDGES.map((e) => [where.edges[e]!, branch])] as Array<[string, string]>) {
    const repo = new Repository(gitdir);
    const head = (await repo.readRef(ref))!;
    const probe = await repo.writeCommit({ files: { 'probe.txt': Buffer.from('chaos probe\n') }, parents: [head], message: 'chaos probe\n', author: { name: 'chaos', email: 'chaos@fedgit.invalid', timestamp: Math.floor(Date.now() / 1000) } });
    git(gitdir, 'update-ref', ref, probe, head); // native git: refused if a lock were held
    await repo.updateRef(ref, head, probe); // and fedgit's compare-and-swap moves it back
  }

  // ---- figures ----
  const edgeCommits = (await Promise.all(EDGES.map((e) => readEdgeHistory(edgeRepos[e]!, plan)))).flat();
  tally.add('rounds', ROUNDS);
  tally.add('edge commits', edgeCommits.length);
  tally.add('edge commits merged', mergedCommits.length);
  console.log(`chaos-kill (seed ${seed}): ${tally.get('kills') - killsBefore} kills in this federation, ${tally.get('kills')} in all (${tally.get('kills.role.aggregator')} aggregator, ${tally.get('kills.role.edge')} edge), ${tally.get('restarts')} restarts, ${ROUNDS} rounds in ${wallSeconds.toFixed(1)} s`);
  console.log(`chaos-kill phases: ${tally.entries('kills.phase.').map(([k, v]) => `${k.slice('kills.phase.'.length)}=${v}`).join(', ')}`);
  console.log(`chaos-kill triggers: ${tally.entries('kills.trigger.').map(([k, v]) => `${k.slice('kills.trigger.'.length)}=${v}`).join(', ')}`);
  console.log(`chaos-kill result: ${ROUNDS + 1} global commits (rounds ${ROUNDS}..0, each once), ${mergedCommits.length} edge updates merged once each, ${edgeCommits.length - mergedCommits.length} edge commits never merged (superseded), ${tally.get('leftover files seen right after a kill')} leftover tmp/lock files seen right after kills, 0 left at the end, fsck --strict clean, lost: nothing`);
}

test('an aggregator restarted between the last merge and the tag tags the plan and exits (--exit-when-done)', { timeout: 60_000 }, async (t) => {
  // What a SIGKILL right after the last merge leaves: round N merged, no tag yet.
  const dir = await tempDir(t, 'fedgit-chaos-tag-');
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds: 1, edges: ['hospital-a'], minEdges: 1 }));
  const registries = builtinRegistries;
  const global = new Repository(where.global);
  const aggregator = inProcessAggregator(repos, {}, registries);
  await aggregator.reconcile();
  const round0 = (await readGlobalHead(global, plan))!;
  await commitEdgeUpdate(new Repository(where.edges['hospital-a']!), { plan, edge: 'hospital-a', round: 1, base: round0.oid, architecture: 'linear-toy/v1', tensors: await readWeights(global, round0.oid), datasetSize: 10, metrics: { global: {}, local: {} } });
  await aggregator.reconcile();
  assert.equal((await readGlobalHead(global, plan))!.round, 1);
  assert.equal(await readFinalTag(global, plan), null, 'merged, not tagged yet');

  const child = startCli(['aggregator', '--repos', repos, '--exit-when-done'], { cwd: dir });
  t.after(() => child.kill('SIGKILL'));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited(child), new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running after 30 s'), 30_000)))]);
  clearTimeout(timer);
  assert.ok(await readFinalTag(global, plan), 'the plan is tagged');
  assert.equal(code, 0, `the aggregator tagged the plan but did not exit:\n${child.output()}`);
});
