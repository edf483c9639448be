/** The isomorphic-git HTTP client against the real test git server (nginx + git http-backend). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import git from 'isomorphic-git';
import { startGitServer, type GitServer } from './helpers/git-server.js';
import { tempDir, git as gitCli } from './helpers/temp.js';
import { createHttpClient, authHeaders, basicAuthorization, displayUrl, HttpRequestFailed, type FedgitHttpClient } from '../operator/remote/http-client.js';

const USERS = { alice: 'alice-secret-pw', bob: 'bob-secret-pw' };
let server: GitServer;
let client: FedgitHttpClient;

before(async () => {
  server = await startGitServer({ users: USERS, repos: { 'hospital-a': { writers: ['alice'] }, big: { writers: ['alice'] } } });
  client = createHttpClient();
});
after(async () => {
  client.close();
  await server.stop();
});

const ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@x' };

/** A native-git repository with one new commit holding `files` (on top of `parentOf`'s main); returns its gitdir and commit id. */
function localRepo(dir: string, files: Record<string, Buffer | string>, parentOf?: string): { gitdir: string; head: string } {
  const work = path.join(dir, `work-${Math.random().toString(36).slice(2)}`);
  execFileSync('git', ['init', '-q', '-b', 'main', work], { env: ENV });
  if (parentOf) {
    execFileSync('git', ['-C', work, 'fetch', '-q', parentOf, 'main'], { env: ENV });
    execFileSync('git', ['-C', work, 'reset', '-q', '--hard', 'FETCH_HEAD'], { env: ENV });
  }
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(work, name), content);
  execFileSync('git', ['-C', work, 'add', '.'], { env: ENV });
  execFileSync('git', ['-C', work, 'commit', '-q', '-m', 'c'], { env: ENV });
  return { gitdir: path.join(work, '.git'), head: execFileSync('git', ['-C', work, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim() };
}

const serverHead = (repo: string) => gitCli(server.gitdir(repo), 'rev-parse', 'refs/heads/main').trim();

test('basic auth header and display URL', () => {
  assert.equal(basicAuthorization({ username: 'alice', token: 'pw' }), `Basic ${Buffer.from('alice:pw').toString('base64')}`);
  assert.deepEqual(authHeaders(undefined), {});
  assert.equal(displayUrl('http://alice:pw@127.0.0.1:9/x.git'), 'http://127.0.0.1:9/x.git');
  assert.throws(() => basicAuthorization({ username: 'a:b', token: 'x' }));
});

test('push, clone and fetch through the client', async (t) => {
  const dir = await tempDir(t);
  const alice = authHeaders({ username: 'alice', token: USERS.alice });
  const one = localRepo(dir, { 'w.bin': 'one' });
  const pushed = await git.push({ fs, http: client, gitdir: one.gitdir, url: server.url('hospital-a'), ref: 'main', remoteRef: 'refs/heads/main', headers: alice });
  assert.equal(pushed.ok, true);
  assert.equal(serverHead('hospital-a'), one.head);

  // A reader clones into a bare repository.
  const mirror = path.join(dir, 'mirror.git');
  const reader = createHttpClient({ auth: { username: 'bob', token: USERS.bob } });
  t.after(() => reader.close());
  await git.clone({ fs, http: reader, dir: mirror, gitdir: mirror, url: server.url('hospital-a'), noCheckout: true, singleBranch: true, ref: 'main' });
  assert.equal(await git.resolveRef({ fs, gitdir: mirror, ref: 'refs/remotes/origin/main' }), one.head);

  // A second commit on top, pushed by the writer, then fetched by the reader.
  const two = localRepo(dir, { 'w.bin': 'two' }, one.gitdir);
  await git.push({ fs, http: client, gitdir: two.gitdir, url: server.url('hospital-a'), ref: 'main', headers: alice });
  const fetched = await git.fetch({ fs, http: reader, gitdir: mirror, url: server.url('hospital-a'), ref: 'main', singleBranch: true });
  assert.equal(fetched.fetchHead, two.head);
  assert.equal(gitCli(mirror, 'cat-file', '-p', `${two.head}:w.bin`), 'two');
});

test('a 30 MB blob is pushed and fetched without an idle abort', async (t) => {
  const dir = await tempDir(t);
  const blob = randomBytes(30 * 1024 * 1024);
  const local = localRepo(dir, { 'weights.bin': blob });
  await git.push({ fs, http: client, gitdir: local.gitdir, url: server.url('big', 'alice'), ref: 'main' });
  assert.equal(serverHead('big'), local.head);
  const mirror = path.join(dir, 'mirror.git');
  await git.clone({ fs, http: client, dir: mirror, gitdir: mirror, url: server.url('big'), noCheckout: true, headers: authHeaders({ username: 'bob', token: USERS.bob }) });
  const { blob: got } = await git.readBlob({ fs, gitdir: mirror, oid: local.head, filepath: 'weights.bin' });
  assert.equal(Buffer.compare(Buffer.from(got), blob), 0);
});

test('a wrong password is a 401 whose error carries no password', async (t) => {
  const dir = await tempDir(t);
  const secret = 'wrong-secret-4711';
  for (const attempt of [
    { url: server.url('hospital-a'), headers: authHeaders({ username: 'alice', token: secret }) },
    { url: server.url('hospital-a').replace('http://', `http://alice:${secret}@`), headers: {} },
  ]) {
    const err = await git
      .clone({ fs, http: client, dir: path.join(dir, 'x.git'), gitdir: path.join(dir, 'x.git'), url: attempt.url, noCheckout: true, headers: attempt.headers })
      .then(() => assert.fail('clone should fail'), (e: unknown) => e as Error & { data?: { statusCode?: number } });
    assert.equal(err.data?.statusCode, 401);
    assert.match(err.message, /401/);
    const everything = `${err.message} ${err.stack} ${JSON.stringify(err.data)}`;
    assert.ok(!everything.includes(secret), 'password leaked');
    assert.ok(!everything.includes(Buffer.from(`alice:${secret}`).toString('base64')), 'authorization leaked');
  }
});

test('a push by a non-writer is an error naming 403, and the server is unchanged', async (t) => {
  const dir = await tempDir(t);
  const beforeHead = serverHead('hospital-a');
  const local = localRepo(dir, { 'w.bin': 'mallory' }, server.url('hospital-a', 'bob'));
  const err = await git
    .push({ fs, http: client, gitdir: local.gitdir, url: server.url('hospital-a'), ref: 'main', headers: authHeaders({ username: 'bob', token: USERS.bob }) })
    .then(() => assert.fail('push should fail'), (e: unknown) => e as Error & { data?: { statusCode?: number } });
  assert.match(err.message, /403/);
  assert.equal(err.data?.statusCode, 403);
  assert.ok(!err.message.includes(USERS.bob));
  assert.equal(serverHead('hospital-a'), beforeHead);
});

/** A local server whose `handler` decides how to stall. */
async function stallingServer(t: { after: (fn: () => Promise<void>) => void }, handler: http.RequestListener): Promise<number> {
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => (srv.closeAllConnections(), srv.close(() => r()))));
  return (srv.address() as { port: number }).port;
}

async function readAll(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  if (body) for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

test('a transfer silent for 6 s mid-body is not aborted', async (t) => {
  const port = await stallingServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write('first;');
    setTimeout(() => res.end('second'), 6000);
  });
  const res = await client.request({ url: `http://127.0.0.1:${port}/slow`, method: 'GET', headers: {} });
  assert.equal(res.statusCode, 200);
  assert.equal((await readAll(res.body)).toString(), 'first;second');
});

test('a server that accepts a request and goes silent is given up after the idle timeout, not the overall one', async (t) => {
  const port = await stallingServer(t, () => {}); // never answers
  const quick = createHttpClient({ idleTimeoutMs: 300, timeoutMs: 10 * 60_000 });
  t.after(() => quick.close());
  await assert.rejects(quick.request({ url: `http://127.0.0.1:${port}/silent`, method: 'GET', headers: {} }), (e: Error) => {
    assert.ok(e instanceof HttpRequestFailed, String(e));
    assert.match(e.message, /no data for 300 ms/);
    return true;
  });
});

test('responses nobody reads do not keep every pooled socket: later requests still get one', async (t) => {
  const big = Buffer.alloc(4 << 20, 7); // more than the socket buffers take, so the server cannot finish sending
  const port = await stallingServer(t, (req, res) => {
    if (req.url === '/small') return res.end('ok');
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(big);
  });
  const quick = createHttpClient({ idleTimeoutMs: 300 });
  t.after(() => quick.close());
  // Eight responses (the pool's size) whose bodies are never read.
  for (let n = 0; n < 8; n++) await quick.request({ url: `http://127.0.0.1:${port}/big-${n}`, method: 'GET', headers: {} });
  const res = await quick.request({ url: `http://127.0.0.1:${port}/small`, method: 'GET', headers: {} });
  assert.equal((await readAll(res.body)).toString(), 'ok');
});

test('the overall timeout and connection failures name the URL without credentials', async (t) => {
  const port = await stallingServer(t, (_req, res) => {
    res.writeHead(200);
    res.write('partial');
  });
  const quick = createHttpClient({ timeoutMs: 300 });
  t.after(() => quick.close());
  const res = await quick.request({ url: `http://alice:topsecret@127.0.0.1:${port}/stall`, headers: {} });
  await assert.rejects(readAll(res.body), (e: Error) => {
    assert.ok(e instanceof HttpRequestFailed, String(e));
    assert.match(e.message, /timed out after 300 ms/);
    assert.match(e.message, new RegExp(`http://127\\.0\\.0\\.1:${port}/stall`));
    assert.ok(!e.message.includes('topsecret') && !e.message.includes('alice'));
    return true;
  });

  // The git server down: connection refused.
  const dir = await tempDir(t);
  const refused = createHttpClient();
  t.after(() => refused.close());
  await server.stopTemporarily();
  try {
    await assert.rejects(git.clone({ fs, http: refused, dir: path.join(dir, 'down.git'), gitdir: path.join(dir, 'down.git'), url: server.url('hospital-a', 'alice'), noCheckout: true }), (e: Error) => {
      assert.ok(e instanceof HttpRequestFailed, String(e));
      assert.match(e.message, /ECONNREFUSED/);
      assert.ok(!e.message.includes(USERS.alice), e.message);
      return true;
    });
  } finally {
    await server.restart();
  }
});
