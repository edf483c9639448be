/** The push-webhook endpoint: Gitea, GitHub and GitLab shapes, every refusal, limits and concurrency. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { startWebhookServer, type PushEvent, type WebhookServerOptions } from '../operator/remote/webhook.js';

const SECRET = 'webhook-secret-5f3c9a';
const AFTER = 'a'.repeat(40);

type Reply = { status: number; body: string };

/** One request through node:http; resolves on the response even if the server then closes the connection. */
function send(url: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : Buffer.from(o.body);
    const headers = { ...o.headers };
    if (body && !o.chunked) headers['content-length'] = String(body.length);
    const req = http.request(url, { method: o.method ?? 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    if (body && o.chunked) {
      // Several writes, so the server sees a chunked body it must cut off.
      const step = 64 * 1024;
      for (let i = 0; i < body.length; i += step) req.write(body.subarray(i, i + step));
      req.end();
    } else req.end(body);
  });
}

const sign = (body: string, secret = SECRET) => createHmac('sha256', secret).update(body).digest('hex');

const giteaPayload = (repo = 'fed/hospital-a') =>
  JSON.stringify({ ref: 'refs/heads/main', before: '0'.repeat(40), after: AFTER, repository: { full_name: repo, clone_url: `https://gitea.example.org/${repo}.git` }, pusher: { login: 'hospital-a' } });
const githubPayload = giteaPayload;
const gitlabPayload = (repo = 'fed/hospital-a', kind = 'push') =>
  JSON.stringify({ object_kind: kind, ref: 'refs/heads/main', before: '0'.repeat(40), after: AFTER, project: { path_with_namespace: repo, git_http_url: `https://gitlab.example.org/${repo}.git` } });

function giteaHeaders(body: string, signature = sign(body)): Record<string, string> {
  // Gitea also sends GitHub-style headers; its own take precedence.
  return { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-signature': signature, 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${signature}` };
}
function githubHeaders(body: string, signature = `sha256=${sign(body)}`, event = 'push'): Record<string, string> {
  return { 'content-type': 'application/json', 'x-github-event': event, 'x-hub-signature-256': signature, 'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' };
}
function gitlabHeaders(token = SECRET, event = 'Push Hook'): Record<string, string> {
  return { 'content-type': 'application/json', 'x-gitlab-event': event, 'x-gitlab-token': token };
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, extra: Partial<WebhookServerOptions> = {}) {
  const events: PushEvent[] = [];
  const logs: { level: string; message: string; data?: Record<string, unknown> }[] = [];
  const collect = (level: string) => (message: string, data?: Record<string, unknown>) => void logs.push({ level, message, ...(data ? { data } : {}) });
  const server = await startWebhookServer({
    secret: SECRET,
    port: 0,
    onPush: (e) => void events.push(e),
    log: { error: collect('error'), warn: collect('warn'), info: collect('info'), debug: collect('debug') },
    ...extra,
  });
  t.after(() => server.close());
  return { server, events, logs };
}

test('each provider is accepted with a correct signature or token', async (t) => {
  const { server, events, logs } = await setup(t);
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/hooks$/);

  const gitea = giteaPayload('fed/hospital-a');
  assert.equal((await send(server.url, { headers: giteaHeaders(gitea), body: gitea })).status, 204);
  const github = githubPayload('fed/hospital-b');
  assert.equal((await send(server.url, { headers: githubHeaders(github), body: github })).status, 204);
  const gitlab = gitlabPayload('fed/aggregator');
  assert.equal((await send(server.url, { headers: gitlabHeaders(), body: gitlab })).status, 204);
  const charset = githubPayload('fed/hospital-c');
  assert.equal((await send(server.url, { headers: { ...githubHeaders(charset), 'content-type': 'application/json; charset=utf-8' }, body: charset })).status, 204);

  assert.deepEqual(events, [
    { provider: 'gitea', repository: 'fed/hospital-a', ref: 'refs/heads/main', before: '0'.repeat(40), after: AFTER },
    { provider: 'github', repository: 'fed/hospital-b', ref: 'refs/heads/main', before: '0'.repeat(40), after: AFTER },
    { provider: 'gitlab', repository: 'fed/aggregator', ref: 'refs/heads/main', before: '0'.repeat(40), after: AFTER },
    { provider: 'github', repository: 'fed/hospital-c', ref: 'refs/heads/main', before: '0'.repeat(40), after: AFTER },
  ]);
  const everything = JSON.stringify(logs);
  assert.ok(!everything.includes(SECRET));
  assert.ok(!everything.includes(sign(gitea)) && !everything.includes(sign(github)));
});

test('the clone URL stands in when there is no full name', async (t) => {
  const { server, events } = await setup(t);
  const body = JSON.stringify({ ref: 'refs/heads/round-3', after: AFTER, repository: { clone_url: 'https://git.example.org/fed/x.git' } });
  assert.equal((await send(server.url, { headers: githubHeaders(body), body })).status, 204);
  const gl = JSON.stringify({ object_kind: 'push', ref: 'refs/heads/main', project: { git_http_url: 'https://gitlab.example.org/fed/y.git' } });
  assert.equal((await send(server.url, { headers: gitlabHeaders(), body: gl })).status, 204);
  assert.deepEqual(events, [
    { provider: 'github', repository: 'https://git.example.org/fed/x.git', ref: 'refs/heads/round-3', after: AFTER },
    { provider: 'gitlab', repository: 'https://gitlab.example.org/fed/y.git', ref: 'refs/heads/main' },
  ]);
});

test('a GitHub ping is answered 200 and triggers nothing', async (t) => {
  const { server, events } = await setup(t);
  const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1, hook: {} });
  const r = await send(server.url, { headers: githubHeaders(body, `sha256=${sign(body)}`, 'ping'), body });
  assert.equal(r.status, 200);
  assert.equal(events.length, 0);
});

test('every refusal has its status, a logged reason and no trigger', async (t) => {
  const { server, events, logs } = await setup(t);
  const base = `http://127.0.0.1:${server.port}`;
  const gh = githubPayload();
  const gt = giteaPayload();
  const gl = gitlabPayload();
  const cases: { name: string; status: number; url?: string; method?: string; headers?: Record<string, string>; body?: string }[] = [
    { name: 'GET', status: 405, method: 'GET' },
    { name: 'PUT', status: 405, method: 'PUT', headers: githubHeaders(gh), body: gh },
    { name: 'wrong path', status: 404, url: `${base}/other`, headers: githubHeaders(gh), body: gh },
    { name: 'path prefix only', status: 404, url: `${base}/hooks/x`, headers: githubHeaders(gh), body: gh },
    { name: 'no provider headers', status: 401, headers: { 'content-type': 'application/json' }, body: gh },
    { name: 'github without signature', status: 401, headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: gh },
    { name: 'gitea without signature', status: 401, headers: { 'content-type': 'application/json', 'x-gitea-event': 'push' }, body: gt },
    { name: 'gitlab without token', status: 401, headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook' }, body: gl },
    { name: 'github wrong secret', status: 403, headers: githubHeaders(gh, `sha256=${sign(gh, 'other')}`), body: gh },
    { name: 'github signature of another body', status: 403, headers: githubHeaders(gh), body: gh.replace('main', 'evil') },
    { name: 'github sha1-style signature', status: 403, headers: githubHeaders(gh, `sha1=${sign(gh)}`), body: gh },
    { name: 'github garbage signature', status: 403, headers: githubHeaders(gh, 'sha256=zz'), body: gh },
    { name: 'gitea wrong signature', status: 403, headers: giteaHeaders(gt, sign(gt, 'other')), body: gt },
    { name: 'gitlab wrong token', status: 403, headers: gitlabHeaders('not-the-secret'), body: gl },
    { name: 'gitlab token prefix', status: 403, headers: gitlabHeaders(SECRET.slice(0, -1)), body: gl },
    { name: 'form-encoded github', status: 415, headers: { ...githubHeaders(gh), 'content-type': 'application/x-www-form-urlencoded' }, body: `payload=${encodeURIComponent(gh)}` },
    { name: 'malformed JSON', status: 400, headers: githubHeaders('{"ref":'), body: '{"ref":' },
    { name: 'JSON array', status: 400, headers: githubHeaders('[1]'), body: '[1]' },
    { name: 'github issues event', status: 400, headers: githubHeaders(gh, `sha256=${sign(gh)}`, 'issues'), body: gh },
    { name: 'push without ref', status: 400, headers: githubHeaders('{"repository":{"full_name":"a/b"}}'), body: '{"repository":{"full_name":"a/b"}}' },
    { name: 'push without repository', status: 400, headers: githubHeaders('{"ref":"refs/heads/main"}'), body: '{"ref":"refs/heads/main"}' },
    { name: 'gitlab merge request', status: 400, headers: gitlabHeaders(SECRET, 'Merge Request Hook'), body: gitlabPayload('a/b', 'merge_request') },
  ];
  for (const c of cases) {
    const before = logs.length;
    const r = await send(c.url ?? server.url, { method: c.method ?? 'POST', headers: c.headers ?? {}, ...(c.body !== undefined ? { body: c.body } : {}) });
    assert.equal(r.status, c.status, `${c.name}: got ${r.status} ${r.body}`);
    const refusal = logs.slice(before).find((l) => l.level === 'warn');
    assert.ok(refusal && /refused: \S/.test(refusal.message), `${c.name}: no refusal logged`);
  }
  assert.equal(events.length, 0);
  const everything = JSON.stringify(logs);
  assert.ok(!everything.includes(SECRET), 'secret logged');
  assert.ok(!everything.includes(sign(gh)) && !everything.includes(sign(gt)), 'signature logged');
});

test('an oversized body is refused with 413, declared or chunked, without a trigger', async (t) => {
  const { server, events } = await setup(t, { maxBodyBytes: 64 * 1024 });
  const big = JSON.stringify({ ref: 'refs/heads/main', after: AFTER, repository: { full_name: 'a/b' }, padding: 'x'.repeat(2 * 1024 * 1024) });
  const declared = await send(server.url, { headers: githubHeaders(big), body: big });
  assert.equal(declared.status, 413);
  const chunked = await send(server.url, { headers: githubHeaders(big), body: big, chunked: true });
  assert.equal(chunked.status, 413);
  // Just under the limit passes.
  const fits = JSON.stringify({ ref: 'refs/heads/main', after: AFTER, repository: { full_name: 'a/b' }, padding: 'x'.repeat(60 * 1024) });
  assert.equal((await send(server.url, { headers: githubHeaders(fits), body: fits })).status, 204);
  assert.equal(events.length, 1);
});

test('concurrent deliveries are each handled once', async (t) => {
  const { server, events } = await setup(t);
  const requests = Array.from({ length: 24 }, (_, i) => {
    const repo = `fed/site-${i}`;
    if (i % 4 === 3) {
      const body = githubPayload(repo);
      return send(server.url, { headers: githubHeaders(body, `sha256=${sign(body, 'wrong')}`), body }); // refused
    }
    if (i % 3 === 0) {
      const body = giteaPayload(repo);
      return send(server.url, { headers: giteaHeaders(body), body });
    }
    if (i % 3 === 1) {
      const body = githubPayload(repo);
      return send(server.url, { headers: githubHeaders(body), body });
    }
    const body = gitlabPayload(repo);
    return send(server.url, { headers: gitlabHeaders(), body });
  });
  const replies = await Promise.all(requests);
  replies.forEach((r, i) => assert.equal(r.status, i % 4 === 3 ? 403 : 204, `request ${i}`));
  const seen = events.map((e) => e.repository).sort();
  const expected = Array.from({ length: 24 }, (_, i) => i)
    .filter((i) => i % 4 !== 3)
    .map((i) => `fed/site-${i}`)
    .sort();
  assert.deepEqual(seen, expected);
});

test('a failing onPush is a 500 and is logged', async (t) => {
  const { server, logs } = await setup(t, {
    onPush: () => {
      throw new Error('reconcile queue closed');
    },
  });
  const body = githubPayload();
  assert.equal((await send(server.url, { headers: githubHeaders(body), body })).status, 500);
  assert.ok(logs.some((l) => l.level === 'error' && String(l.data?.error).includes('reconcile queue closed')));
});

test('an empty secret is refused at start', async () => {
  await assert.rejects(startWebhookServer({ secret: '', onPush: () => {} }), /secret/);
});
