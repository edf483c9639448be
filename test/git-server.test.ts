/** The test git server (nginx + fcgiwrap + git http-backend), exercised with native git. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startGitServer, type GitServer } from './helpers/git-server.js';
import { tempDir, git, waitFor, sleep } from './helpers/temp.js';
import { checkCredentials, parseWebhookPayload } from '../operator/remote/webhook-verify.js';
import { parseSpooled, spoolingHook } from './helpers/webhook-deliverer.js';

const ENV = {
  ...process.env,
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.org',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.org',
};

function run(cwd: string, ...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('git', ['-c', 'credential.helper=', ...args], { cwd, env: ENV, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function ok(cwd: string, ...args: string[]): string {
  const r = run(cwd, ...args);
  assert.equal(r.code, 0, `git ${args.join(' ')} failed: ${r.out}`);
  return r.out;
}

const serverRef = (s: GitServer, repo: string) => {
  try {
    return git(s.gitdir(repo), 'rev-parse', '--verify', '-q', 'refs/heads/main').trim();
  } catch {
    return null;
  }
};

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const server = await startGitServer({
    users: { alice: 'alice-pw', bob: 'bob-pw', 'carol.x': 'p@ss:w/rd' },
    repos: { 'hospital-a': { writers: ['alice'] }, 'fed/aggregator': { writers: ['bob', 'carol.x'] } },
  });
  t.after(() => server.stop());
  const dir = await tempDir(t, 'fedgit-gitsrv-test-');
  return { server, dir };
}

/** Commits `file` on main in the working clone `dir`; returns the new commit id. */
function commitIn(dir: string, file: string, content: string): string {
  ok(dir, 'checkout', '-q', '-B', 'main');
  writeFileSync(path.join(dir, file), content);
  ok(dir, 'add', file);
  ok(dir, 'commit', '-q', '-m', `write ${file}`);
  return ok(dir, 'rev-parse', 'HEAD').trim();
}

test('a writer clones and pushes; a reader clones what was pushed', async (t) => {
  const { server, dir } = await setup(t);
  const a = path.join(dir, 'a');
  ok(dir, 'clone', '-q', server.url('hospital-a', 'alice'), a);
  const head = commitIn(a, 'weights.bin', 'w1');
  ok(a, 'push', '-q', 'origin', 'main');
  assert.equal(serverRef(server, 'hospital-a'), head);

  const b = path.join(dir, 'b');
  ok(dir, 'clone', '-q', server.url('hospital-a', 'bob'), b);
  assert.equal(ok(b, 'rev-parse', 'HEAD').trim(), head);

  // Slashes in repository names and awkward passwords work too.
  const c = path.join(dir, 'c');
  ok(dir, 'clone', '-q', server.url('fed/aggregator', 'carol.x'), c);
  const ch = commitIn(c, 'global.bin', 'g1');
  ok(c, 'push', '-q', 'origin', 'main');
  assert.equal(serverRef(server, 'fed/aggregator'), ch);
});

test('a push by a non-writer gets 403 and changes nothing', async (t) => {
  const { server, dir } = await setup(t);
  const a = path.join(dir, 'a');
  ok(dir, 'clone', '-q', server.url('hospital-a', 'alice'), a);
  const before = commitIn(a, 'x', '1');
  ok(a, 'push', '-q', 'origin', 'main');

  const b = path.join(dir, 'b');
  ok(dir, 'clone', '-q', server.url('hospital-a', 'bob'), b);
  commitIn(b, 'x', '2');
  const r = run(b, 'push', 'origin', 'main');
  assert.notEqual(r.code, 0);
  assert.match(r.out, /403/);
  assert.equal(serverRef(server, 'hospital-a'), before);
  assert.ok(server.accessLog().some((e) => e.user === 'bob' && e.status === 403 && e.query === 'service=git-receive-pack'));
  // The bare git-receive-pack endpoint is refused as well, not only the discovery.
  const res = await fetch(`${server.url('hospital-a')}/git-receive-pack`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('bob:bob-pw').toString('base64')}`, 'content-type': 'application/x-git-receive-pack-request' },
    body: '0000',
  });
  assert.equal(res.status, 403);
  assert.equal(serverRef(server, 'hospital-a'), before);
});

test('unauthenticated or wrong-password requests get 401', async (t) => {
  const { server, dir } = await setup(t);
  const r = run(dir, 'ls-remote', server.url('hospital-a'));
  assert.notEqual(r.code, 0);
  const wrong = server.url('hospital-a').replace('http://', 'http://alice:nope@');
  const w = run(dir, 'clone', '-q', wrong, path.join(dir, 'w'));
  assert.notEqual(w.code, 0);
  assert.match(w.out, /Authentication failed|401/);
  for (const service of ['git-upload-pack', 'git-receive-pack']) {
    const res = await fetch(`${server.url('hospital-a')}/info/refs?service=${service}`);
    assert.equal(res.status, 401, service);
    const bad = await fetch(`${server.url('hospital-a')}/info/refs?service=${service}`, { headers: { authorization: `Basic ${Buffer.from('mallory:x').toString('base64')}` } });
    assert.equal(bad.status, 401, service);
  }
  const other = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(other.status, 401);
  const log = server.accessLog();
  assert.ok(log.length > 0 && log.every((e) => e.status === 401));
  assert.ok(!JSON.stringify(log).includes('nope'));
});

test('a non-fast-forward push is refused, even with force', async (t) => {
  const { server, dir } = await setup(t);
  const a = path.join(dir, 'a');
  ok(dir, 'clone', '-q', server.url('hospital-a', 'alice'), a);
  commitIn(a, 'x', '1');
  const second = commitIn(a, 'x', '2');
  ok(a, 'push', '-q', 'origin', 'main');
  ok(a, 'reset', '-q', '--hard', 'HEAD~1');
  commitIn(a, 'x', 'diverged');
  for (const force of [[], ['--force']]) {
    const r = run(a, 'push', ...force, 'origin', 'main');
    assert.notEqual(r.code, 0, `push ${force.join(' ')} should fail`);
    assert.match(r.out, /non-fast-forward|rejected/);
    assert.equal(serverRef(server, 'hospital-a'), second);
  }
});

test('stop and restart keep serving the same repositories on the same port', async (t) => {
  const { server, dir } = await setup(t);
  const a = path.join(dir, 'a');
  ok(dir, 'clone', '-q', server.url('hospital-a', 'alice'), a);
  const head = commitIn(a, 'x', '1');
  ok(a, 'push', '-q', 'origin', 'main');
  const port = server.port;

  await server.stopTemporarily();
  const down = run(dir, 'ls-remote', server.url('hospital-a', 'bob'));
  assert.notEqual(down.code, 0);
  assert.match(down.out, /connect|refused/i);

  await server.restart();
  assert.equal(server.port, port);
  const up = ok(dir, 'ls-remote', server.url('hospital-a', 'bob'), 'refs/heads/main');
  assert.equal(up.split(/\s/)[0], head);
  const next = commitIn(a, 'x', '2');
  ok(a, 'push', '-q', 'origin', 'main');
  assert.equal(serverRef(server, 'hospital-a'), next);
});

test('a push delivers a signed Gitea-style push event to each webhook, and an endpoint that is down fails nothing', async (t) => {
  const received: Array<{ headers: http.IncomingHttpHeaders; body: Buffer }> = [];
  const listener = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => listener.close(() => resolve())));
  const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/hooks`;
  // Nothing listens there: connection refused.
  const down = await new Promise<string>((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const u = `http://127.0.0.1:${(s.address() as AddressInfo).port}/hooks`;
      s.close(() => resolve(u));
    });
  });
  const secret = 'hook-secret-7d1e';
  const server = await startGitServer({
    users: { alice: 'alice-pw', bob: 'bob-pw' },
    repos: { 'fed/hospital-a': { writers: ['alice'], hooks: [{ url: down, secret: 'other' }, { url, secret }] }, quiet: { writers: ['alice'] } },
  });
  t.after(() => server.stop());
  const dir = await tempDir(t, 'fedgit-gitsrv-test-');

  const a = path.join(dir, 'a');
  ok(dir, 'clone', '-q', server.url('fed/hospital-a', 'alice'), a);
  const first = commitIn(a, 'x', '1');
  const started = Date.now();
  ok(a, 'push', '-q', 'origin', 'main');
  assert.ok(Date.now() - started < 5_000, 'the push did not wait for the endpoint that is down');
  await waitFor('the delivery', async () => received.length >= 1 && server.deliveries().length >= 2, 10_000, 20);

  assert.equal(received.length, 1);
  const [{ headers, body }] = received as [{ headers: http.IncomingHttpHeaders; body: Buffer }];
  assert.equal(headers['content-type'], 'application/json');
  assert.equal(headers['x-gitea-event'], 'push');
  assert.equal(headers['x-gitea-signature'], createHmac('sha256', secret).update(body).digest('hex'));
  assert.equal(checkCredentials('gitea', headers, body, secret).ok, true, 'fedgit’s own check accepts it');
  assert.equal(checkCredentials('gitea', headers, body, 'wrong').ok, false);
  const event = JSON.parse(body.toString('utf8'));
  assert.deepEqual(
    { ref: event.ref, before: event.before, after: event.after, full_name: event.repository.full_name, clone_url: event.repository.clone_url, pusher: event.pusher.login },
    { ref: 'refs/heads/main', before: '0'.repeat(40), after: first, full_name: 'fed/hospital-a', clone_url: server.url('fed/hospital-a'), pusher: 'alice' },
  );
  const parsed = parseWebhookPayload('gitea', headers, body);
  assert.equal(parsed.kind, 'push');

  const log = server.deliveries();
  assert.deepEqual(log.map((d) => [d.url, d.status ?? d.error]).sort(), [[down, 'ECONNREFUSED'], [url, 204]].sort());

  // A second push: one event per updated ref (a branch and a tag), with the old value.
  const second = commitIn(a, 'x', '2');
  ok(a, 'tag', 'v1');
  ok(a, 'push', '-q', 'origin', 'main', 'v1');
  await waitFor('two more deliveries', async () => received.length >= 3, 10_000, 20);
  const events = received.slice(1).map((r) => JSON.parse(r.body.toString('utf8')));
  assert.deepEqual(events.map((e) => [e.ref, e.before, e.after]).sort(), [['refs/heads/main', first, second], ['refs/tags/v1', '0'.repeat(40), second]].sort());

  // A repository without hooks delivers nothing; setHooks adds (and removes) them at run time.
  const q = path.join(dir, 'q');
  ok(dir, 'clone', '-q', server.url('quiet', 'alice'), q);
  commitIn(q, 'y', '1');
  ok(q, 'push', '-q', 'origin', 'main');
  await sleep(500);
  assert.equal(received.length, 3);
  await server.setHooks('quiet', [{ url, secret }]);
  const quietHead = commitIn(q, 'y', '2');
  ok(q, 'push', '-q', 'origin', 'main');
  await waitFor('the delivery for quiet', async () => received.length >= 4, 10_000, 20);
  assert.equal(JSON.parse(received[3]!.body.toString('utf8')).after, quietHead);
  await server.setHooks('quiet', []);
  commitIn(q, 'y', '3');
  ok(q, 'push', '-q', 'origin', 'main');
  await sleep(500);
  assert.equal(received.length, 4);
});

test('an endpoint that never answers neither blocks the push nor is waited for longer than the delivery timeout', async (t) => {
  const hanging = http.createServer(() => {
    /* reads the request, never answers */
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => (hanging.closeAllConnections(), hanging.close(() => resolve()))));
  const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/hooks`;
  const server = await startGitServer({ users: { alice: 'alice-pw' }, repos: { r: { writers: ['alice'], hooks: [{ url, secret: 's' }] } }, webhookTimeoutMs: 300 });
  t.after(() => server.stop());
  const dir = await tempDir(t, 'fedgit-gitsrv-test-');
  const a = path.join(dir, 'a');
  ok(dir, 'clone', '-q', server.url('r', 'alice'), a);
  const head = commitIn(a, 'x', '1');
  const started = Date.now();
  ok(a, 'push', '-q', 'origin', 'main');
  assert.ok(Date.now() - started < 3_000);
  assert.equal(serverRef(server, 'r'), head);
  const [attempt] = await waitFor('the timed-out attempt', async () => (server.deliveries().length ? server.deliveries() : null), 10_000, 20);
  assert.equal(attempt!.status, undefined);
  assert.match(attempt!.error ?? '', /timed out/);
  assert.ok(attempt!.ms >= 250 && attempt!.ms < 3_000, `${attempt!.ms} ms`);
});

test('the post-receive hook spools a push with shell builtins; the deliverer takes only complete files', async (t) => {
  const dir = await tempDir(t, 'fedgit-gitsrv-test-');
  const hook = path.join(dir, 'post-receive');
  writeFileSync(hook, spoolingHook(dir, 'fed/hospital-a'), { mode: 0o755 });
  const input = `${'1'.repeat(40)} ${'2'.repeat(40)} refs/heads/main\n${'0'.repeat(40)} ${'2'.repeat(40)} refs/tags/v1\n`;
  for (let i = 0; i < 2; i++) {
    const r = spawnSync(hook, { cwd: dir, input, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', REMOTE_USER: 'alice' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  const spooled = readdirSync(dir).filter((n) => n !== 'post-receive');
  assert.equal(spooled.length, 2, 'two pushes, two files: none overwrites another');
  const push = parseSpooled(readFileSync(path.join(dir, spooled[0]!), 'utf8'));
  assert.deepEqual(push, {
    repo: 'fed/hospital-a',
    pusher: 'alice',
    updates: [['1'.repeat(40), '2'.repeat(40), 'refs/heads/main'], ['0'.repeat(40), '2'.repeat(40), 'refs/tags/v1']],
  });
  assert.equal(parseSpooled(`fed/hospital-a\nalice\n${'1'.repeat(40)} ${'2'.repeat(40)} refs/heads/main\n`), undefined, 'a file still being written is left for later');
});
