/**
 * A participant driven by notifications asks a server for its refs only when a poll tick or a
 * push event says the server may have moved, and a push event marks only the repository it names.
 * Counted on the real git server's access log (git http-backend behind nginx).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir } from './helpers/temp.js';
import { PASSWORDS, serverFor } from './helpers/remote-federation.js';
import type { GitServer } from './helpers/git-server.js';
import { createOpener, servesRepository } from '../operator/store/open-repository.js';
import { createHttpClient } from '../operator/remote/http-client.js';
import type { HttpClient } from 'isomorphic-git';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const author = { name: 'x', email: 'x@y', timestamp: 1 };

/** Ref advertisements (GET info/refs for upload-pack: a listing, or the start of a fetch) the server has answered for `repo`. */
const listings = (server: GitServer, repo: string) => server.accessLog().filter((r) => r.path === `/${repo}.git/info/refs` && r.query.includes('git-upload-pack')).length;
/** Packs (POST git-upload-pack: the second half of a fetch) the server has sent for `repo`. */
const packs = (server: GitServer, repo: string) => server.accessLog().filter((r) => r.method === 'POST' && r.path === `/${repo}.git/git-upload-pack`).length;
/** Any request about `repo`. */
const requests = (server: GitServer, repo: string) => server.accessLog().filter((r) => r.path.startsWith(`/${repo}.git/`)).length;

test('mirrors that list only when stale: one listing per notification, for the repository it names', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator }, listOnlyWhenStale: true });
  const global = await open.require(server.url('global'), 'the global repository');
  const edge = await open.require(server.url('edge-hospital-a'), 'the repository of hospital-a');
  // The edge has pushed an update. (Listing an empty repository costs isomorphic-git a second
  // request, which would blur the counts below.)
  const hospital = await createOpener({ cacheDir: path.join(dir, 'hospital-a'), auth: { username: 'hospital-a', token: PASSWORDS['hospital-a'] } }).require(server.url('edge-hospital-a'), 'its repository');
  await hospital.updateRef('refs/heads/fedgit/x-00000000', await hospital.writeCommit({ files: { f: Buffer.from('a') }, parents: [], message: 'update\n', author }), null);

  await global.refresh();
  await edge.refresh();
  const [globalBefore, edgeBefore, edgePacks] = [listings(server, 'global'), listings(server, 'edge-hospital-a'), packs(server, 'edge-hospital-a')];
  await global.refresh();
  await edge.refresh();
  assert.equal(listings(server, 'global'), globalBefore, 'no notification: the mirror is not compared again');
  assert.equal(listings(server, 'edge-hospital-a'), edgeBefore);

  // Someone else pushes to the global repository; its push event names it.
  const other = createOpener({ cacheDir: path.join(dir, 'other'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } });
  const writer = await other.require(server.url('global'), 'the global repository');
  const commit = await writer.writeCommit({ files: { f: Buffer.from('1') }, parents: [], message: 'one\n', author });
  await writer.updateRef('refs/heads/fedgit/x-00000000', commit, null);

  const packsBefore = packs(server, 'global');
  open.markRemotesStale('global');
  await global.refresh();
  await edge.refresh();
  assert.equal(listings(server, 'global'), globalBefore + 1, 'the named repository is listed once; the fetch of its new branch reuses that advertisement');
  assert.equal(packs(server, 'global'), packsBefore + 1, 'and asks only for the pack');
  assert.equal(listings(server, 'edge-hospital-a'), edgeBefore, 'the other is not');
  assert.equal(await global.readRef('refs/heads/fedgit/x-00000000'), commit, 'and the mirror has the new branch');

  // A name that matches no mirror (or a poll tick, which names none) marks them all.
  open.markRemotesStale('somebody/else');
  await global.refresh();
  await edge.refresh();
  assert.equal(listings(server, 'global'), globalBefore + 2, 'listed again, nothing to fetch');
  assert.equal(packs(server, 'global'), packsBefore + 1);
  assert.equal(listings(server, 'edge-hospital-a'), edgeBefore + 1);
  assert.equal(packs(server, 'edge-hospital-a'), edgePacks, 'a repository whose refs did not move is not fetched');
});

test('after its own accepted push, a mirror does not ask the server what it just wrote', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator }, listOnlyWhenStale: true });
  const global = await open.require(server.url('global'), 'the global repository');
  await global.refresh();
  const first = await global.writeCommit({ files: { f: Buffer.from('1') }, parents: [], message: 'one\n', author });
  await global.updateRef('refs/heads/fedgit/x-00000000', first, null);
  const second = await global.writeCommit({ files: { f: Buffer.from('2') }, parents: [first], message: 'two\n', author });
  await global.updateRef('refs/heads/fedgit/x-00000000', second, first);
  const afterPushes = requests(server, 'global');
  await global.refresh();
  await global.refresh();
  assert.equal(requests(server, 'global'), afterPushes, 'no request: the mirror knows the server holds its own pushes');

  // Another writer moves the branch. Until a notification says so, this mirror's push from the
  // old head is refused by the server (a compare-and-swap), and the next refresh asks again.
  const other = createOpener({ cacheDir: path.join(dir, 'other'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } });
  const writer = await other.require(server.url('global'), 'the global repository');
  await writer.refresh();
  const third = await writer.writeCommit({ files: { f: Buffer.from('3') }, parents: [second], message: 'three\n', author });
  await writer.updateRef('refs/heads/fedgit/x-00000000', third, second);
  const stale = await global.writeCommit({ files: { f: Buffer.from('4') }, parents: [second], message: 'four\n', author });
  await assert.rejects(global.updateRef('refs/heads/fedgit/x-00000000', stale, second), (e: Error & { code?: string }) => e.code === 'REF_CONFLICT');
  assert.equal(await global.readRef('refs/heads/fedgit/x-00000000'), second, 'the refused push is undone in the mirror');
  const beforeRetry = listings(server, 'global');
  await global.refresh();
  assert.equal(listings(server, 'global'), beforeRetry + 1);
  assert.equal(await global.readRef('refs/heads/fedgit/x-00000000'), third, 'and brings the other writer’s commit');
});

test('by default a mirror compares itself with the server at every refresh', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const global = await createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } }).require(server.url('global'), 'the global repository');
  await global.refresh();
  const before = listings(server, 'global');
  await global.refresh();
  assert.equal(listings(server, 'global'), before + 1);
});

test('a push event names a repository by full name, path or clone URL', () => {
  const at = 'https://git.example.org/fedgit/global.git';
  assert.equal(servesRepository(at, 'fedgit/global'), true);
  assert.equal(servesRepository(at, 'FedGit/Global'), true, 'names compare without case, as Gitea and GitLab do');
  assert.equal(servesRepository(at, 'global'), true);
  assert.equal(servesRepository(at, 'https://git.example.org/fedgit/global.git'), true);
  assert.equal(servesRepository(at, 'fedgit/edge-hospital-a'), false);
  assert.equal(servesRepository(at, 'obal'), false, 'a whole path segment, not a suffix of one');
  assert.equal(servesRepository(at, ''), false);
});

test('a push event naming the old and the new value is followed without a listing; one the mirror cannot follow is listed', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const ref = 'refs/heads/fedgit/x-00000000';
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator }, listOnlyWhenStale: true });
  const global = await open.require(server.url('global'), 'the global repository');
  const writer = await createOpener({ cacheDir: path.join(dir, 'other'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } }).require(server.url('global'), 'the global repository');
  const commits: string[] = [];
  const advance = async () => {
    const parent = commits.at(-1);
    const commit = await writer.writeCommit({ files: { f: Buffer.from(String(commits.length)) }, parents: parent ? [parent] : [], message: `${commits.length}\n`, author });
    await writer.updateRef(ref, commit, parent ?? null);
    commits.push(commit);
    return { ref, before: parent ?? '0'.repeat(40), after: commit };
  };
  await advance();
  await global.refresh();
  assert.equal(await global.readRef(ref), commits[0]);

  let [listed, fetched] = [listings(server, 'global'), packs(server, 'global')];
  open.markRemotesStale('global', await advance());
  open.markRemotesStale('global', await advance());
  await global.refresh();
  assert.equal(await global.readRef(ref), commits[2], 'two announced pushes in a row are followed');
  assert.equal(listings(server, 'global'), listed, 'without asking the server for its refs');
  assert.equal(packs(server, 'global'), fetched + 1, 'only for the pack');

  // A push whose event was lost: the next event starts from a value this mirror never saw.
  await advance();
  open.markRemotesStale('global', await advance());
  [listed, fetched] = [listings(server, 'global'), packs(server, 'global')];
  await global.refresh();
  assert.equal(await global.readRef(ref), commits[4]);
  assert.equal(listings(server, 'global'), listed + 1, 'a chain it cannot follow is listed');

  // A poll tick (no event) since: the server may have moved unannounced, so it is listed too.
  open.markRemotesStale('global', await advance());
  open.markRemotesStale();
  listed = listings(server, 'global');
  await global.refresh();
  assert.equal(await global.readRef(ref), commits[5]);
  assert.equal(listings(server, 'global'), listed + 1);

  // An event naming a value the server does not hold: the fetch is refused and the server listed.
  open.markRemotesStale('global', { ref, before: commits[5]!, after: 'e'.repeat(40) });
  listed = listings(server, 'global');
  await global.refresh();
  assert.equal(await global.readRef(ref), commits[5], 'the mirror keeps what the server holds');
  assert.equal(listings(server, 'global'), listed + 1);
});

test('a push from a known value is one request written by fedgit; a stale one is still refused as a moved ref', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const ref = 'refs/heads/fedgit/x-00000000';
  const pushes: string[] = [];
  const fetches: string[] = [];
  const client = createHttpClient();
  t.after(() => client.close());
  const recording: HttpClient = {
    async request(req) {
      const kind = req.method === 'POST' && req.url.endsWith('/git-receive-pack') ? pushes : req.method === 'POST' && req.url.endsWith('/git-upload-pack') ? fetches : undefined;
      if (kind) {
        const chunks: Uint8Array[] = [];
        for await (const chunk of req.body ?? []) chunks.push(chunk);
        const body = Buffer.concat(chunks);
        kind.push(body.subarray(0, 200).toString('latin1'));
        return client.request({ ...req, body: (async function* () { yield new Uint8Array(body); })() });
      }
      return client.request(req);
    },
  };
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator }, listOnlyWhenStale: true, http: recording });
  const global = await open.require(server.url('global'), 'the global repository');
  await global.refresh();
  const commits: string[] = [];
  for (let i = 0; i < 3; i++) {
    const parent = commits.at(-1) ?? null;
    commits.push(await global.writeCommit({ files: { 'weights.safetensors': randomBytes(300_000) }, parents: parent ? [parent] : [], message: `${i}\n`, author }));
    await global.updateRef(ref, commits[i]!, parent);
  }
  assert.equal(pushes.length, 3);
  assert.doesNotMatch(pushes[0]!, /agent=fedgit/, 'the push that creates the ref is isomorphic-git\'s (it reads the server\'s advertisement)');
  assert.match(pushes[1]!, /agent=fedgit/);
  assert.match(pushes[2]!, new RegExp(`^[0-9a-f]{4}${commits[1]} ${commits[2]} ${ref}\0report-status side-band-64k agent=fedgit`));
  const target = path.join(dir, 'check.git');
  execFileSync('git', ['clone', '-q', '--bare', server.url('global').replace('://', `://aggregator:${PASSWORDS.aggregator}@`), target]);
  assert.equal(execFileSync('git', ['--git-dir', target, 'rev-parse', ref]).toString().trim(), commits[2], 'native git clones what fedgit pushed');
  execFileSync('git', ['--git-dir', target, 'fsck', '--strict']);

  // Another mirror fetches it: one upload-pack request written by fedgit, and native git agrees with what it stored.
  const reader = await createOpener({ cacheDir: path.join(dir, 'reader'), auth: { username: 'aggregator', token: PASSWORDS.aggregator }, http: recording }).require(server.url('global'), 'the global repository');
  fetches.length = 0; // (listing the repository while it was empty cost isomorphic-git a POST too)
  await reader.refresh();
  assert.equal(await reader.readRef(ref), commits[2]);
  assert.equal(fetches.length, 1);
  assert.match(fetches[0]!, new RegExp(`^[0-9a-f]{4}want ${commits[2]} side-band-64k ofs-delta agent=fedgit`));
  execFileSync('git', ['--git-dir', reader.gitdir, 'fsck', '--strict', '--no-dangling']);

  // Another writer moves the branch; this mirror's push from the old value is refused as a moved ref.
  const writer = await createOpener({ cacheDir: path.join(dir, 'other'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } }).require(server.url('global'), 'the global repository');
  await writer.refresh();
  const theirs = await writer.writeCommit({ files: { f: Buffer.from('theirs') }, parents: [commits[2]!], message: 'theirs\n', author });
  await writer.updateRef(ref, theirs, commits[2]!);
  const mine = await global.writeCommit({ files: { f: Buffer.from('mine') }, parents: [commits[2]!], message: 'mine\n', author });
  await assert.rejects(global.updateRef(ref, mine, commits[2]!), (e: Error & { code?: string }) => e.code === 'REF_CONFLICT');
  assert.match(pushes.at(-1)!, /agent=fedgit/, 'refused through fedgit\'s own push');
});
