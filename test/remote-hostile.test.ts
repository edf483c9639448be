/**
 * The protocol over a real git server (git http-backend behind nginx): what a server must refuse
 * so that audit survives a hostile edge, how push refusals are told apart from conflicts, and
 * chaos — participants SIGKILLed and the server crashed at random moments during a remote run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tempDir, exited, runCli, toyPlan, waitFor, sleep } from './helpers/temp.js';
import type { GitServer } from './helpers/git-server.js';
import { baseUrl, participantDir, PARTICIPANTS, PASSWORDS, publishPlan, roleOf, serverFor, startFederation, startParticipant, type Participant } from './helpers/remote-federation.js';
import { seeded, Tally } from './helpers/chaos.js';
import { createOpener } from '../operator/store/open-repository.js';
import { PushRefused } from '../operator/remote/remote-link.js';
import { RefConflict } from '../operator/errors.js';

const gitOut = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: 'pipe' });

/** Every merge on the server's global branch, audited against the server's own repositories. */
async function auditAll(server: GitServer, dir: string): Promise<string[]> {
  const repos = path.dirname(server.gitdir('plan'));
  const merges = gitOut('--git-dir', server.gitdir('global'), 'log', '--all', '--format=%H %(trailers:key=Fedgit-Round,valueonly,separator=)', '--', 'weights.safetensors')
    .trim().split('\n').filter((l) => !/ 0$/.test(l)).map((l) => l.split(' ')[0]!);
  for (const commit of merges) {
    const audit = await runCli(['audit', commit, '--repos', repos], { cwd: dir });
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  }
  return merges;
}

test('an edge cannot delete or rewrite its branch on the server, so every merge still audits', { timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  await publishPlan(server, dir, toyPlan({ rounds: 2 }));
  const { procs } = await startFederation(dir, baseUrl(server));
  t.after(() => procs.forEach((p) => p.kill('SIGKILL')));
  for (const p of procs) assert.equal(await exited(p), 0, p.output().slice(-2000));

  const branch = gitOut('--git-dir', server.gitdir('edge-hospital-b'), 'for-each-ref', '--format=%(refname)', 'refs/heads/fedgit/').trim();
  const before = gitOut('--git-dir', server.gitdir('edge-hospital-b'), 'rev-parse', branch).trim();
  const hostile = path.join(dir, 'hostile');
  gitOut('clone', '-q', '--bare', server.url('edge-hospital-b', 'hospital-b'), hostile);
  const deletion = (() => { try { gitOut('--git-dir', hostile, 'push', 'origin', `:${branch}`); return 'accepted'; } catch (e) { return String((e as { stderr?: string }).stderr); } })();
  assert.match(deletion, /deletion prohibited|denyDeletes|rejected/i, 'deleting the branch is refused');
  const orphan = gitOut('--git-dir', hostile, 'commit-tree', '-m', 'rewrite', gitOut('--git-dir', hostile, 'rev-parse', `${branch}^{tree}`).trim()).trim();
  const rewrite = (() => { try { gitOut('--git-dir', hostile, 'push', '--force', 'origin', `${orphan}:${branch}`); return 'accepted'; } catch (e) { return String((e as { stderr?: string }).stderr); } })();
  assert.match(rewrite, /non-fast-forward|denyNonFastForwards|rejected/i, 'rewriting the branch is refused');
  assert.equal(gitOut('--git-dir', server.gitdir('edge-hospital-b'), 'rev-parse', branch).trim(), before);
  assert.equal((await auditAll(server, dir)).length, 2);
});

test('a push the server refuses for another reason is a PushRefused with its words, a moved ref a RefConflict', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } });
  const global = await open.require(server.url('global'), 'the global repository');
  const author = { name: 'x', email: 'x@y', timestamp: 1 };
  const first = await global.writeCommit({ files: { f: Buffer.from('1') }, parents: [], message: 'first\n', author });
  await global.updateRef('refs/heads/fedgit/t-00000000', first, null);

  // A server-side policy refuses the next push.
  const hook = path.join(server.gitdir('global'), 'hooks', 'pre-receive');
  await mkdir(path.dirname(hook), { recursive: true });
  await writeFile(hook, '#!/bin/sh\necho "policy: pushes are frozen for maintenance" >&2\nexit 1\n');
  await chmod(hook, 0o755);
  const second = await global.writeCommit({ files: { f: Buffer.from('2') }, parents: [first], message: 'second\n', author });
  await assert.rejects(global.updateRef('refs/heads/fedgit/t-00000000', second, first), (e) => e instanceof PushRefused && /pre-receive hook declined/.test(e.message));
  assert.equal(await global.readRef('refs/heads/fedgit/t-00000000'), first, 'the local mirror went back');
  // That push asked the server nothing first (it names the value it replaces, which the server
  // checks): the one advertisement read so far is the one of the push that created the branch.
  const discoveries = () => server.accessLog().filter((r) => r.path === '/global.git/info/refs' && r.query === 'service=git-receive-pack' && r.status === 200).length;
  assert.equal(discoveries(), 1);

  // Once the policy is lifted, the push goes through; after a refusal, the link reads the real
  // advertisement again rather than trust the copy it answered the refused push with.
  await writeFile(hook, '#!/bin/sh\nexit 0\n');
  await global.updateRef('refs/heads/fedgit/t-00000000', second, first);
  assert.equal(discoveries(), 2);

  // Another writer moves the branch first: a real conflict, which the server finds under its ref
  // lock (this push asks nothing first either) and the link confirms by listing the server.
  const other = path.join(dir, 'other');
  gitOut('clone', '-q', '--bare', server.url('global', 'aggregator'), other);
  const theirs = gitOut('--git-dir', other, 'commit-tree', '-p', second, '-m', 'theirs', gitOut('--git-dir', other, 'rev-parse', `${second}^{tree}`).trim()).trim();
  gitOut('--git-dir', other, 'push', '-q', 'origin', `${theirs}:refs/heads/fedgit/t-00000000`);
  const pushesBefore = discoveries();
  const third = await global.writeCommit({ files: { f: Buffer.from('3') }, parents: [second], message: 'third\n', author });
  await assert.rejects(global.updateRef('refs/heads/fedgit/t-00000000', third, second), (e) => e instanceof RefConflict && e.message.includes(`found ${theirs}`));
  assert.equal(await global.readRef('refs/heads/fedgit/t-00000000'), second, 'the local mirror went back');
  assert.equal(discoveries(), pushesBefore);
});

test('chaos over HTTP: participants SIGKILLed and the git server crashed at random moments; nothing lost, every merge audits', { timeout: 1_000_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  // Training is slowed so that the run lasts long enough in wall time for the disturbances below
  // (every 0.8-2.3 s) to hit it several times: rounds over HTTP no longer take a second each.
  const rounds = 8;
  await publishPlan(server, dir, toyPlan({ rounds, epochDelayMs: 900 }));
  const names = PARTICIPANTS;
  const homes = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await participantDir(dir, n, roleOf(n), baseUrl(server))] as const))) as Record<Participant, string>;
  const running = new Map<Participant, ReturnType<typeof startParticipant>>();
  const all: Array<ReturnType<typeof startParticipant>> = [];
  const launch = (n: Participant) => {
    const p = startParticipant(homes[n], n);
    running.set(n, p);
    all.push(p);
  };
  t.after(() => all.forEach((p) => p.kill('SIGKILL')));
  names.forEach(launch);

  const { random } = seeded(20261201);
  const tally = new Tally();
  const tagged = () => gitOut('--git-dir', server.gitdir('global'), 'tag').trim() !== '';
  // A bounded number of disturbances, then the run must finish on its own: with no bound, a
  // loaded machine restarting processes slower than they are killed would make no progress.
  const disturbances = () => tally.get('participant SIGKILLs') + tally.get('git server crashes');
  while (!tagged() && disturbances() < 20) {
    await sleep(800 + Math.floor(random() * 1500));
    if (tagged()) break;
    const victim = Math.floor(random() * 4);
    if (victim === 3) {
      await server.crash();
      tally.add('git server crashes');
      await sleep(300 + Math.floor(random() * 1200));
      await server.restart();
    } else {
      const name = names[victim]!;
      const p = running.get(name)!;
      if (p.exitCode !== null) continue; // finished already
      p.kill('SIGKILL');
      await exited(p);
      tally.add('participant SIGKILLs');
      await sleep(Math.floor(random() * 700));
      launch(name);
    }
  }
  // A round used to stall until its deadline (3 times in about 10 runs): an edge killed between
  // committing to its mirror and pushing a new branch believed it had pushed (fixed in
  // remote-link.ts, test/remote-mirror.test.ts). The wait stays long enough for a deadline, and
  // how long the calm phase took is printed, so a stall stays visible.
  const calmSince = Date.now();
  try {
    await waitFor('the final tag', async () => tagged(), 12 * 60_000, 250);
  } catch (e) {
    const tails = [...running].map(([n, p]) => `--- ${n}\n${p.output().split('\n').slice(-12).join('\n')}`).join('\n');
    throw new Error(`${(e as Error).message} after ${JSON.stringify(tally.entries())}; stale server locks removed: ${server.staleLocksRemoved().length}\n${tails}`);
  }
  for (const p of running.values()) assert.equal(await exited(p), 0, p.output().slice(-2000));

  const history = gitOut('--git-dir', server.gitdir('global'), 'log', '--first-parent', '--format=%(trailers:key=Fedgit-Round,valueonly,separator=)', gitOut('--git-dir', server.gitdir('global'), 'tag').trim()).trim().split('\n');
  assert.deepEqual(history, Array.from({ length: rounds + 1 }, (_, i) => String(rounds - i)), 'every round exactly once, in order');
  for (const repo of ['plan', 'global', 'edge-hospital-a', 'edge-hospital-b']) gitOut('--git-dir', server.gitdir(repo), 'fsck', '--strict', '--no-dangling');
  const merges = await auditAll(server, dir);
  console.log(`remote-chaos: the run finished ${((Date.now() - calmSince) / 1000).toFixed(0)} s after the last disturbance`);
  console.log(`remote-chaos: ${tally.get('participant SIGKILLs')} participant SIGKILLs and ${tally.get('git server crashes')} git server crashes (${server.staleLocksRemoved().length} stale ref locks left by them, removed at restart) during a ${rounds}-round run over HTTP; ${merges.length} merges, each audited; lost: nothing`);
  assert.ok(tally.get('participant SIGKILLs') + tally.get('git server crashes') >= 5, 'the run was disturbed enough to test something');
});
