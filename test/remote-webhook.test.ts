/**
 * Issue 5: with polling a round waits for the poll period; with webhooks it
 * does not. Every participant polls only every 10 minutes and runs its own
 * webhook endpoint with its own secret; the git server (git http-backend
 * behind nginx) delivers signed Gitea-style push events of the repositories
 * each participant reads. The plan finishing in seconds can only be the
 * webhooks' doing. A request with a wrong signature is refused and triggers
 * nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tempDir, startCli, exited, toyPlan, waitFor, sleep } from './helpers/temp.js';
import { freePort, startGitServer, type GitServer } from './helpers/git-server.js';

const PASSWORDS = { admin: 'admin-pw', aggregator: 'agg-pw', 'hospital-a': 'a-pw', 'hospital-b': 'b-pw' } as const;
const SECRETS = { aggregator: 'agg-hook-secret-19c2', 'hospital-a': 'a-hook-secret-8e07', 'hospital-b': 'b-hook-secret-51fd' } as const;
type Participant = keyof typeof SECRETS;
const PARTICIPANTS = Object.keys(SECRETS) as Participant[];
const POLL = '10m';


const refs = (server: GitServer, repo: string) => execFileSync('git', ['--git-dir', server.gitdir(repo), 'for-each-ref', '--format=%(refname) %(objectname)'], { encoding: 'utf8' });

async function publishPlan(server: GitServer, dir: string, yaml: string): Promise<string> {
  const work = path.join(dir, 'plan-work');
  const gitc = (...args: string[]) => execFileSync('git', ['-C', work, '-c', 'user.name=admin', '-c', 'user.email=admin@example.org', ...args], { encoding: 'utf8', stdio: 'pipe' });
  execFileSync('git', ['clone', '-q', server.url('plan', 'admin'), work], { stdio: 'pipe' });
  await writeFile(path.join(work, 'plan.yaml'), yaml);
  gitc('add', 'plan.yaml');
  gitc('commit', '-q', '-m', 'Plan toy');
  gitc('push', '-q', 'origin', 'HEAD:refs/heads/main');
  return gitc('rev-parse', 'HEAD').trim();
}

/** POSTs a Gitea push event to a participant's endpoint, signed with `secret`. */
async function sendPush(url: string, secret: string, event: { repo: string; ref: string; after: string; cloneUrl: string }): Promise<number> {
  const body = JSON.stringify({ ref: event.ref, before: '0'.repeat(40), after: event.after, repository: { full_name: event.repo, clone_url: event.cloneUrl } });
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-signature': createHmac('sha256', secret).update(body).digest('hex') },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

test('webhooks drive a 2-edge run over HTTP although nobody polls more often than every 10 minutes; a wrong signature is refused and changes nothing', async (t) => {
  const dir = await tempDir(t);
  const ports = Object.fromEntries(await Promise.all(PARTICIPANTS.map(async (p) => [p, await freePort()] as const))) as Record<Participant, number>;
  const hookUrl = (p: Participant) => `http://127.0.0.1:${ports[p]}/hooks`;
  const hook = (p: Participant) => ({ url: hookUrl(p), secret: SECRETS[p] });
  // Who is told about which repository: edges read plan and global, the aggregator plan and the edge
  // repositories. It is not told of its own pushes to global: after acting, an operator looks again by itself.
  // The plan's hooks are added only after the plan is published (see below).
  const server = await startGitServer({
    users: { ...PASSWORDS },
    repos: {
      plan: { writers: ['admin'] },
      global: { writers: ['aggregator'], hooks: [hook('hospital-a'), hook('hospital-b')] },
      'edge-hospital-a': { writers: ['hospital-a'], hooks: [hook('aggregator')] },
      'edge-hospital-b': { writers: ['hospital-b'], hooks: [hook('aggregator')] },
    },
  });
  t.after(() => server.stop());
  const base = server.url('plan').replace(/\/plan\.git$/, '');

  const homes = {} as Record<Participant, string>;
  for (const p of PARTICIPANTS) {
    const home = path.join(dir, p);
    await mkdir(home, { recursive: true });
    await writeFile(
      path.join(home, 'participant.yaml'),
      `role: ${p === 'aggregator' ? 'aggregator' : 'edge'}\nname: ${p}\nrepos: { root: '${base}' }\nauth: { tokenEnv: FEDGIT_TOKEN }\nlogs: logs\npollInterval: ${POLL}\nwebhook: { listen: '127.0.0.1:${ports[p]}', path: /hooks, secretEnv: FEDGIT_WEBHOOK_SECRET }\n`,
    );
    homes[p] = home;
  }
  const logOf = (p: Participant) => readFile(path.join(homes[p], 'logs', `${p}.jsonl`), 'utf8').catch(() => '');
  const procs = PARTICIPANTS.map((p) =>
    startCli([p === 'aggregator' ? 'aggregator' : 'edge', '--config', 'participant.yaml', '--exit-when-done'], { cwd: homes[p], env: { FEDGIT_TOKEN: PASSWORDS[p], FEDGIT_WEBHOOK_SECRET: SECRETS[p] } }),
  );
  t.after(() => procs.forEach((c) => c.kill('SIGKILL')));

  let passed = false;
  t.after(() => {
    if (!passed) for (const [i, p] of PARTICIPANTS.entries()) console.error(`--- ${p}\n${procs[i]!.output().slice(-4000)}`);
  });
  // Everyone is up and has had its start-up look: no plan yet.
  for (const p of PARTICIPANTS) {
    await waitFor(`${p} listening and idle`, async () => {
      const log = await logOf(p);
      return log.includes('webhook endpoint listening') && log.includes('no plan yet');
    }, 30_000);
  }

  // The plan is published while nobody is told: a reconcile now would start round 0, but nothing asks for one.
  const planId = await publishPlan(server, dir, toyPlan({ rounds: 3 }));
  const before = Object.fromEntries(['plan', 'global', 'edge-hospital-a', 'edge-hospital-b'].map((r) => [r, refs(server, r)]));
  assert.equal(before.global, '');
  const planEvent = { repo: 'plan', ref: 'refs/heads/main', after: planId, cloneUrl: server.url('plan') };
  for (const p of PARTICIPANTS) {
    assert.equal(await sendPush(hookUrl(p), 'not-the-secret', planEvent), 403, `${p} refuses a wrong signature`);
    // Someone else's secret is just as wrong.
    assert.equal(await sendPush(hookUrl(p), SECRETS[p === 'aggregator' ? 'hospital-a' : 'aggregator'], planEvent), 403);
  }
  await sleep(2_000);
  for (const [repo, value] of Object.entries(before)) assert.equal(refs(server, repo), value, `${repo} unchanged after refused webhooks`);
  for (const p of PARTICIPANTS) {
    const log = await logOf(p);
    assert.match(log, /webhook refused: gitea: wrong X-Gitea-Signature/);
    assert.doesNotMatch(log, /plan toy \(/, `${p} did not even read the plan`);
    assert.ok(procs[PARTICIPANTS.indexOf(p)]!.exitCode === null, `${p} still running`);
  }

  // From now on the server tells everyone about the plan too; the missed plan event is redelivered once
  // (as Gitea's "redeliver" would), correctly signed. Everything after that is the server's deliveries.
  await server.setHooks('plan', PARTICIPANTS.map(hook));
  const started = Date.now();
  for (const p of PARTICIPANTS) assert.equal(await sendPush(hookUrl(p), SECRETS[p], planEvent), 204);
  for (const c of procs) assert.equal(await exited(c), 0, c.output().slice(-3000));
  const elapsed = Date.now() - started;
  t.diagnostic(`3 rounds over HTTP driven by webhooks in ${elapsed} ms (poll period ${POLL})`);
  assert.ok(elapsed < 60_000, `finished in ${elapsed} ms, well under the 10-minute poll period`);

  const tags = execFileSync('git', ['--git-dir', server.gitdir('global'), 'tag'], { encoding: 'utf8' }).trim();
  assert.match(tags, /^inference-toy-[0-9a-f]{8}$/);
  const rounds = execFileSync('git', ['--git-dir', server.gitdir('global'), 'log', '--format=%(trailers:key=Fedgit-Round,valueonly,separator=)', tags], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(rounds, ['3', '2', '1', '0']);

  // The server did the telling: every global round reached both edges, every edge update reached the aggregator.
  const delivered = server.deliveries().filter((d) => d.status === 204);
  for (const repo of ['edge-hospital-a', 'edge-hospital-b']) {
    assert.ok(delivered.filter((d) => d.repo === repo && d.url === hookUrl('aggregator')).length >= 3, `${repo} → aggregator`);
  }
  for (const p of ['hospital-a', 'hospital-b'] as const) {
    assert.ok(delivered.filter((d) => d.repo === 'global' && d.url === hookUrl(p) && d.ref.startsWith('refs/heads/')).length >= 3, `global → ${p}`);
  }
  for (const p of PARTICIPANTS) {
    const log = await logOf(p);
    assert.ok(!log.includes(SECRETS[p]), `${p}'s webhook secret never reaches its log`);
  }
  passed = true;
});
