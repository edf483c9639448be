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

const author = { name: 'x', email: 'x@y', timestamp: 1 };

/** Ref advertisements (GET info/refs for upload-pack: a listing, or the start of a fetch) the server has answered for `repo`. */
const listings = (server: GitServer, repo: string) => server.accessLog().filter((r) => r.path === `/${repo}.git/info/refs` && r.query.includes('git-upload-pack')).length;

test('mirrors that list only when stale: one listing per notification, for the repository it names', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator }, listOnlyWhenStale: true });
  const global = await open.require(server.url('global'), 'the global repository');
  const edge = await open.require(server.url('edge-hospital-a'), 'the repository of hospital-a');

  await global.refresh();
  await edge.refresh();
  const [globalBefore, edgeBefore] = [listings(server, 'global'), listings(server, 'edge-hospital-a')];
  await global.refresh();
  await edge.refresh();
  assert.equal(listings(server, 'global'), globalBefore, 'no notification: the mirror is not compared again');
  assert.equal(listings(server, 'edge-hospital-a'), edgeBefore);

  // Someone else pushes to the global repository; its push event names it.
  const other = createOpener({ cacheDir: path.join(dir, 'other'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } });
  const writer = await other.require(server.url('global'), 'the global repository');
  const commit = await writer.writeCommit({ files: { f: Buffer.from('1') }, parents: [], message: 'one\n', author });
  await writer.updateRef('refs/heads/fedgit/x-00000000', commit, null);

  open.markRemotesStale('global');
  await global.refresh();
  await edge.refresh();
  assert.equal(listings(server, 'global'), globalBefore + 2, 'the named repository is listed once, then its new branch fetched');
  assert.equal(listings(server, 'edge-hospital-a'), edgeBefore, 'the other is not');
  assert.equal(await global.readRef('refs/heads/fedgit/x-00000000'), commit, 'and the mirror has the new branch');

  // A name that matches no mirror (or a poll tick, which names none) marks them all.
  open.markRemotesStale('somebody/else');
  await global.refresh();
  await edge.refresh();
  assert.equal(listings(server, 'global'), globalBefore + 3, 'listed again, nothing to fetch');
  assert.equal(listings(server, 'edge-hospital-a'), edgeBefore + 1);
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
