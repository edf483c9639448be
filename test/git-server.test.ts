/** The test git server (nginx + fcgiwrap + git http-backend), exercised with native git. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startGitServer, type GitServer } from './helpers/git-server.js';
import { tempDir, git } from './helpers/temp.js';

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
