/**
 * `fedgit prune --keep-rounds K` (docs/lfs.md, "Retention"): the pure decision as a table; a local
 * federation with `lfs: true` and a server optimiser pruned to its newest 2 rounds, the removed
 * objects checked against the ones computed with git itself from the commits' pointers; git left
 * as it was, `log` and `status` whole, audit passing on the latest merge and failing — naming the
 * object — on a pruned round until the files are restored; `--dry-run`, a second run, K < 2 and a
 * plan without LFS; pruning over and over while rounds run; and a participant's mirror of a server,
 * pruned while the server keeps its objects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { decideRetention, type CommitObjects } from '../operator/lfs/retention.js';
import { parseKeepRounds, pruneLfsObjects } from '../operator/commands/prune.js';
import { writeLfsObject } from '../operator/lfs/object-store.js';
import { auditCommit, renderAudit } from '../operator/commands/audit.js';
import { Repository } from '../operator/git/repository.js';
import { TRAILER, WEIGHTS_FILE, planBranch, renderMessage } from '../operator/git/names.js';
import { readGlobalHistory, readPlanHead, reposAtUrl } from '../operator/store/federation.js';
import { createOpener } from '../operator/store/open-repository.js';
import { parsePlan } from '../operator/plan/plan.js';
import { UsageError } from '../operator/errors.js';
import { builtinRegistries } from '../bin/registries.js';
import { startToyFederation } from './helpers/toy-federation.js';
import { whereUnder } from './helpers/chaos.js';
import { runCli, tempDir, toyPlan } from './helpers/temp.js';
import { startGitServer } from './helpers/git-server.js';
import { PASSWORDS, baseUrl, participantDir, publishPlan } from './helpers/remote-federation.js';

const P = 'p'.repeat(40);
const Q = 'q'.repeat(40);
const c = (commit: string, planId: string | undefined, round: number | undefined, ...oids: string[]): CommitObjects => ({ commit, planId, round, oids });

for (const [what, commits, headRound, keepRounds, remove, shared] of [
  ['rounds below the window go, the window stays', [c('g0', P, 0, 'w0'), c('g1', P, 1, 'w1', 's1'), c('g2', P, 2, 'w2', 's2'), c('g3', P, 3, 'w3', 's3'), c('e3', P, 3, 'u3'), c('e1', P, 1, 'u1')], 3, 2, ['s1', 'u1', 'w0', 'w1'], []],
  ['an object a kept round also points to stays', [c('e1', P, 1, 'same'), c('e3', P, 3, 'same'), c('g0', P, 0, 'w0')], 3, 2, ['w0'], ['same']],
  ['a round not merged yet keeps its objects (and is never pruned)', [c('g0', P, 0, 'w0'), c('e9', P, 9, 'w0', 'u9')], 3, 2, [], ['w0']],
  ['another plan keeps what it points to', [c('g0', P, 0, 'w0'), c('h0', Q, 0, 'w0'), c('h1', Q, 1, 'x1')], 5, 2, [], ['w0']],
  ['a commit without plan or round trailers keeps what it points to', [c('g0', P, 0, 'w0'), c('hand', undefined, undefined, 'w0'), c('g1', P, 1, 'w1')], 5, 2, ['w1'], ['w0']],
  ['every round within K: nothing goes', [c('g0', P, 0, 'w0'), c('g1', P, 1, 'w1')], 1, 2, [], []],
  ['K = 3 keeps three rounds', [c('g0', P, 0, 'w0'), c('g1', P, 1, 'w1'), c('g2', P, 2, 'w2'), c('g3', P, 3, 'w3')], 3, 3, ['w0'], []],
] as const) {
  test(`decideRetention: ${what}`, () => {
    const decision = decideRetention(commits, { planId: P, headRound, keepRounds });
    assert.deepEqual(decision, { remove: [...remove], shared: [...shared] });
  });
}

test('decideRetention refuses to keep fewer than 2 rounds; --keep-rounds is checked with the flag and value in the message', () => {
  assert.throws(() => decideRetention([], { planId: P, headRound: 3, keepRounds: 1 }), RangeError);
  assert.equal(parseKeepRounds('2'), 2);
  assert.equal(parseKeepRounds('10'), 10);
  const refused = (value: string | undefined, pattern: RegExp) => assert.throws(() => parseKeepRounds(value), (e: Error) => e instanceof UsageError && pattern.test(e.message));
  refused('1', /^prune: --keep-rounds 1 is too few: keep at least 2 rounds, so that the latest merge and the model it started from stay auditable/);
  refused('0', /--keep-rounds 0 is too few/);
  refused('two', /--keep-rounds takes a whole number of rounds, got 'two'/);
  refused('-3', /got '-3'/);
  refused(undefined, /give --keep-rounds K \(K ≥ 2\)/);
});

const git = (gitdir: string, ...args: string[]) => execFileSync('git', ['--git-dir', gitdir, ...args], { encoding: 'utf8' });

/** The oids a commit's pointers name, read with git itself (no fedgit code). */
function pointerOids(gitdir: string, commit: string): string[] {
  return git(gitdir, 'ls-tree', '--name-only', commit).split('\n').filter((name) => name.endsWith('.safetensors'))
    .map((name) => /^oid sha256:([0-9a-f]{64})$/m.exec(git(gitdir, 'cat-file', 'blob', `${commit}:${name}`))?.[1])
    .filter((oid): oid is string => oid !== undefined);
}

/** Every commit any ref reaches, with its plan and round trailers, read with git itself. */
function commitsOf(gitdir: string): Array<{ commit: string; plan: string; round: string }> {
  return git(gitdir, 'log', '--all', '--format=%H%x09%(trailers:key=Fedgit-Plan,valueonly,separator=%x2C)%x09%(trailers:key=Fedgit-Round,valueonly,separator=%x2C)')
    .split('\n').filter(Boolean).map((line) => {
      const [commit, plan, round] = line.split('\t') as [string, string, string];
      return { commit, plan, round };
    });
}

/** What a retention of the rounds before `oldestKept` must remove, from git alone: objects only those rounds' commits point to. */
function expectedRemoval(gitdir: string, planId: string, oldestKept: number): string[] {
  const old = new Set<string>();
  const needed = new Set<string>();
  for (const { commit, plan, round } of commitsOf(gitdir)) {
    const isOld = plan === planId && /^\d+$/.test(round) && Number(round) < oldestKept;
    for (const oid of pointerOids(gitdir, commit)) (isOld ? old : needed).add(oid);
  }
  return [...old].filter((oid) => !needed.has(oid)).sort();
}

/** The object files in a store, by name. */
async function storedOids(gitdir: string): Promise<string[]> {
  const root = path.join(gitdir, 'lfs', 'objects');
  const files = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  return files.map((f) => path.basename(f)).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort();
}

const objectFile = (gitdir: string, oid: string) => path.join(gitdir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);

test('a local LFS federation pruned to its newest 2 rounds: exactly the old rounds\' objects go, git stays, audit fails on a pruned round until it is restored', async (t) => {
  const dir = await tempDir(t);
  const edges = ['hospital-a', 'hospital-b'];
  // fedadam: every merge also commits its optimiser state, an LFS object of its own.
  const fed = await startToyFederation(dir, { rounds: 4, edges, planYaml: `${toyPlan({ rounds: 4, edges, minEdges: 2 })}strategy: fedadam\nlfs: true\n` });
  t.after(() => fed.close());
  for (let r = 1; r <= 4; r++) assert.equal((await fed.round()).round, r);
  const rounds = await readGlobalHistory(fed.global, fed.plan);
  assert.deepEqual(rounds.map((r) => r.round), [0, 1, 2, 3, 4]);
  const gitdirs = { global: fed.where.global, ...fed.where.edges } as Record<string, string>;

  // A commit of a kept round (4) on a side branch of hospital-a holding the very bytes of its round-1 update: that object must stay.
  const edgeA = new Repository(fed.where.edges['hospital-a']!);
  const round1A = rounds[1]!.merged.find((m) => m.edge === 'hospital-a')!.commit;
  const copy = await edgeA.writeCommit({
    files: { [WEIGHTS_FILE]: await edgeA.readFile(round1A, WEIGHTS_FILE) }, parents: [], author: { name: 't', email: 't@example.org', timestamp: 1_700_000_000 },
    message: renderMessage('a copy of round 1 in round 4', [[TRAILER.plan, fed.plan.id], [TRAILER.round, '4']]), lfs: { minBytes: 0 },
  });
  await edgeA.updateRef('refs/heads/keep-me', copy, null);
  const shared = pointerOids(edgeA.gitdir, round1A)[0]!;
  assert.deepEqual(pointerOids(edgeA.gitdir, copy), [shared]);

  const expected = Object.fromEntries(Object.entries(gitdirs).map(([name, gitdir]) => [name, expectedRemoval(gitdir, fed.plan.id, 3)]));
  // Global: weights of rounds 0–2 and the optimiser states of rounds 1–2; hospital-a: its round-2 update (round 1's is shared); hospital-b: rounds 1–2.
  assert.deepEqual(Object.values(expected).map((oids) => oids.length), [5, 1, 2]);
  assert.ok(!expected['hospital-a']!.includes(shared));
  const before = Object.fromEntries(await Promise.all(Object.entries(gitdirs).map(async ([name, gitdir]) => [name, await storedOids(gitdir)] as const)));
  const refsBefore = Object.values(gitdirs).map((gitdir) => git(gitdir, 'for-each-ref'));
  // An archive of every object, as an admin would keep in cold storage.
  const archive = path.join(dir, 'archive');
  for (const [name, gitdir] of Object.entries(gitdirs)) {
    for (const oid of before[name]!) {
      await mkdir(path.join(archive, name), { recursive: true });
      await copyFile(objectFile(gitdir, oid), path.join(archive, name, oid));
    }
  }
  const cli = (...args: string[]) => runCli(args, { cwd: dir });
  const storesNow = async () => Object.fromEntries(await Promise.all(Object.entries(gitdirs).map(async ([name, gitdir]) => [name, await storedOids(gitdir)] as const)));

  await t.test('K = 1 is refused, naming the flag and the value; nothing changes', async () => {
    const r = await cli('prune', '--keep-rounds', '1', '--repos', fed.repos);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /^fedgit: prune: --keep-rounds 1 is too few: keep at least 2 rounds/);
    assert.deepEqual(await storesNow(), before);
  });

  await t.test('--dry-run says what would go, per repository, and removes nothing', async () => {
    const r = await cli('prune', '--keep-rounds', '2', '--dry-run', '--repos', fed.repos);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /keeping the LFS objects of rounds 3–4 \(--keep-rounds 2\); dry run, nothing is removed: would remove those only rounds 0–2 point to/);
    assert.match(r.stdout, /global\.git +5 objects, \d+ (bytes|KB) +4 objects/);
    assert.match(r.stdout, /edge-hospital-a\.git +1 object, \d+ (bytes|KB) \(1 kept: a kept round or another commit needs them too\) +3 objects/);
    assert.match(r.stdout, /edge-hospital-b\.git +2 objects, \d+ (bytes|KB) +2 objects/);
    assert.match(r.stdout, /total: would remove 8 objects, .*; 9 objects, .* would stay/);
    assert.deepEqual(await storesNow(), before);
  });

  await t.test('prune removes exactly the objects only rounds 0–2 point to; git is untouched', async () => {
    const r = await cli('prune', '--keep-rounds', '2', '--repos', fed.repos);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /total: removed 8 objects, .*; 9 objects, .* stay/);
    assert.match(r.stdout, /fedgit audit recomputes round 4 \(a merge's audit also reads the model of the round before\)/);
    const after = await storesNow();
    for (const name of Object.keys(gitdirs)) {
      const removed = before[name]!.filter((oid) => !after[name]!.includes(oid));
      assert.deepEqual(removed, expected[name], `${name}: the removed objects`);
      assert.deepEqual(after[name], before[name]!.filter((oid) => !expected[name]!.includes(oid)), `${name}: nothing else changed`);
    }
    assert.deepEqual(Object.values(gitdirs).map((gitdir) => git(gitdir, 'for-each-ref')), refsBefore, 'no ref moved');
    for (const gitdir of Object.values(gitdirs)) execFileSync('git', ['--git-dir', gitdir, 'fsck', '--strict'], { stdio: 'pipe' });
    const again = await cli('prune', '--keep-rounds', '2', '--repos', fed.repos);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /global\.git +0 objects, 0 bytes \(5 already absent\)/, 'a second run finds nothing more to do');
  });

  await t.test('log and status read the whole history', async () => {
    const log = await cli('log', '--repos', fed.repos);
    assert.equal(log.code, 0, log.stdout + log.stderr);
    assert.match(log.stdout, /4\/4 rounds/);
    for (const r of rounds) assert.match(log.stdout, new RegExp(`^${r.round} +${r.oid.slice(0, 8)}`, 'm'), `round ${r.round} is listed`);
    const status = await cli('status', '--repos', fed.repos);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, /aggregator: finished at round 4/);
    assert.match(status.stdout, /; LFS objects: global [\d.]+ [KMG]B \(4\), edges [\d.]+ [KMG]B \(5\)$/m, 'what stays in lfs/objects');
  });

  const audit = (round: number) => auditCommit(whereUnder(fed.repos), fed.registries, rounds[round]!.oid);
  const failures = (report: Awaited<ReturnType<typeof audit>>) => report.checks.filter((check) => !check.ok).map((check) => check.what);

  await t.test('the latest merge still audits; the oldest kept round and a pruned one fail, naming the missing object', async () => {
    const latest = await audit(4);
    assert.ok(latest.ok, failures(latest).join('\n'));
    const round2 = pointerOids(fed.where.global, rounds[2]!.oid);
    // Round 3's objects are kept, but recomputing its merge reads round 2's model and optimiser state.
    const oldestKept = await audit(3);
    assert.equal(oldestKept.ok, false);
    assert.ok(failures(oldestKept).some((what) => round2.some((oid) => what.includes(`LFS object ${oid} is not in this repository's store; a retention policy (fedgit prune) may have pruned it: restore it as ${objectFile(fed.where.global, oid)} (docs/lfs.md)`))), failures(oldestKept).join('\n'));
    const r = await cli('audit', rounds[2]!.oid, '--repos', fed.repos);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const weights2 = /^oid sha256:([0-9a-f]{64})$/m.exec(git(fed.where.global, 'cat-file', 'blob', `${rounds[2]!.oid}:${WEIGHTS_FILE}`))![1]!;
    assert.match(r.stdout, new RegExp(`^FAIL every checkpoint the audit reads is stored: ${WEIGHTS_FILE} of ${rounds[2]!.oid}: LFS object ${weights2} is not in this repository's store; a retention policy \\(fedgit prune\\) may have pruned it: restore it as .*/lfs/objects/${weights2.slice(0, 2)}/${weights2.slice(2, 4)}/${weights2} \\(docs/lfs\\.md\\)$`, 'm'));
    assert.match(r.stdout, /^audit FAILED: /m);
    assert.doesNotMatch(r.stdout, /recomputed .* matches the stored weights/, 'no verdict on the weights without them');
  });

  await t.test('restoring the files a round needs (copied back from the archive) makes its audit pass again', async () => {
    const merge = rounds[2]!;
    const needed: Array<[string, string]> = [
      ...[merge.oid, merge.parent!].flatMap((commit) => pointerOids(fed.where.global, commit).map((oid): [string, string] => ['global', oid])),
      ...merge.merged.flatMap((m) => pointerOids(gitdirs[m.edge]!, m.commit).map((oid): [string, string] => [m.edge, oid])),
    ];
    assert.equal(needed.length, 6, 'its weights and state, the previous round\'s weights and state, two updates');
    for (const [name, oid] of needed) {
      if (existsSync(objectFile(gitdirs[name]!, oid))) continue;
      await copyFile(path.join(archive, name, oid), objectFile(gitdirs[name]!, oid));
    }
    const restored = await audit(2);
    assert.ok(restored.ok, renderAudit(restored));
    const oldestKept = await audit(3);
    assert.ok(oldestKept.ok, renderAudit(oldestKept));
    const stillPruned = await audit(1);
    assert.equal(stillPruned.ok, false);
  });
});

test('pruning over and over while the federation runs: every merge happens and audits, an update not merged yet and an object not yet committed stay', async (t) => {
  const dir = await tempDir(t);
  const edges = ['hospital-a', 'hospital-b'];
  const fed = await startToyFederation(dir, { rounds: 4, edges, planYaml: `${toyPlan({ rounds: 4, edges, minEdges: 2 })}strategy: fedadam\nlfs: true\n` });
  t.after(() => fed.close());
  const where = whereUnder(fed.repos);
  // An edge that has stored its next checkpoint but not committed it yet (between writeLfsObject and the commit).
  const unborn = await writeLfsObject(fed.where.edges['hospital-b']!, randomBytes(512));
  let running = true;
  let prunes = 0;
  const pruner = (async () => {
    while (running) {
      await pruneLfsObjects(where, fed.plan, { keepRounds: 2, dryRun: false });
      prunes++;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  })();
  try {
    for (let r = 1; r <= 4; r++) {
      // The updates of round r are pushed, and pruning runs, before the aggregator merges them.
      for (const edge of edges) await fed.push(edge);
      await new Promise((resolve) => setTimeout(resolve, 5));
      await fed.settle();
      const head = await fed.head();
      assert.equal(head.round, r, `round ${r} merged`);
      const report = await auditCommit(where, fed.registries, head.oid);
      assert.ok(report.ok, renderAudit(report));
    }
  } finally {
    running = false;
    await pruner;
  }
  assert.ok(prunes >= 4, `${prunes} prunes ran beside the rounds`);
  await pruneLfsObjects(where, fed.plan, { keepRounds: 2, dryRun: false });
  for (const gitdir of [fed.where.global, ...Object.values(fed.where.edges)]) {
    const kept = (await storedOids(gitdir)).filter((oid) => oid !== unborn.oid);
    const all = [...new Set(commitsOf(gitdir).flatMap(({ commit }) => pointerOids(gitdir, commit)))];
    assert.deepEqual(kept, all.filter((oid) => !expectedRemoval(gitdir, fed.plan.id, 3).includes(oid)).sort(), `${gitdir}: rounds 3–4 stay, nothing else`);
  }
  assert.ok(existsSync(objectFile(fed.where.edges['hospital-b']!, unborn.oid)), 'an object no commit names yet is never a candidate');
});

test('a plan without LFS is refused: its weights are plain git blobs', async (t) => {
  const dir = await tempDir(t);
  const fed = await startToyFederation(dir, { rounds: 1, edges: ['hospital-a'] });
  t.after(() => fed.close());
  const r = await runCli(['prune', '--keep-rounds', '2', '--repos', fed.repos], { cwd: dir });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^fedgit: prune: plan toy \([0-9a-f]{8}\) keeps its checkpoints as plain git blobs \(no `lfs:` in the plan\): there are no LFS objects to prune, and git objects are never removed; see docs\/lfs\.md/);
});

test('a participant\'s mirror of a server is pruned; the server keeps its objects, the mirror downloads one again when it is read, and no mirror is made', async (t) => {
  const server = await startGitServer({
    users: { ...PASSWORDS }, lfs: true,
    repos: { plan: { writers: ['admin'] }, global: { writers: ['aggregator'] }, 'edge-hospital-a': { writers: ['hospital-a'] }, 'edge-hospital-b': { writers: ['hospital-b'] } },
  });
  t.after(() => server.stop());
  const dir = await tempDir(t);
  const base = baseUrl(server);
  await publishPlan(server, dir, `${toyPlan({ name: 'mirrored', rounds: 3 })}lfs: true\n`);
  const home = await participantDir(dir, 'aggregator', 'aggregator', base);
  // The aggregator's own mirrors, where its config puts them; it commits four rounds (by hand: only the pointers matter here).
  const open = createOpener({ cacheDir: path.join(home, '.fedgit-cache', 'aggregator'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } });
  const where = reposAtUrl(base, ['hospital-a', 'hospital-b']);
  const planRepo = await open.require(where.plan, 'the plan repository');
  await planRepo.refresh();
  const head = (await readPlanHead(planRepo))!;
  const plan = { id: head.id, text: head.text, plan: parsePlan(head.text, 'plan.yaml', { apps: builtinRegistries.apps }) };
  const global = await open.require(where.global, 'the global repository');
  await global.refresh();
  const weights: Buffer[] = [];
  let parent: string | null = null;
  for (let round = 0; round <= 3; round++) {
    weights.push(randomBytes(2048));
    const commit: string = await global.writeCommit({
      files: { [WEIGHTS_FILE]: weights[round]! }, parents: parent ? [parent] : [], author: { name: 't', email: 't@example.org', timestamp: 1_700_000_000 + round },
      message: renderMessage(`round ${round}`, [[TRAILER.plan, plan.id], [TRAILER.round, String(round)]]), lfs: { minBytes: 0 },
    });
    await global.updateRef(planBranch(plan.plan.name, plan.id), commit, parent);
    parent = commit;
  }
  const oids = [...(await global.firstParentChain(parent!))].reverse().map((commit) => pointerOids(global.gitdir, commit.oid)[0]!);
  assert.deepEqual(await storedOids(global.gitdir), [...oids].sort());

  const r = await runCli(['prune', '--keep-rounds', '2', '--config', 'participant.yaml'], { cwd: home, env: { FEDGIT_TOKEN: PASSWORDS.aggregator } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /global\.git +2 objects, 4 KB +2 objects, 4 KB/);
  assert.match(r.stdout, /A mirror downloads a pruned object again from its server when something reads it; the server's own store is pruned by its admin/);
  assert.deepEqual(await storedOids(global.gitdir), [oids[2]!, oids[3]!].sort(), 'rounds 0 and 1 left the mirror');
  for (const oid of oids) assert.ok(existsSync(server.lfsObject('global', oid)), 'the server keeps every object');
  assert.deepEqual((await readdir(path.join(home, '.fedgit-cache', 'aggregator'))).filter((name) => name.includes('edge-')), [], 'no edge mirror was made to be pruned');
  const round0 = (await global.firstParentChain(parent!)).at(-1)!.oid;
  assert.ok((await global.readFile(round0, WEIGHTS_FILE)).equals(weights[0]!), 'read again: downloaded from the server, verified');
  assert.ok((await storedOids(global.gitdir)).includes(oids[0]!));
});
