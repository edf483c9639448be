/**
 * A participant's local mirror of a server repository after the participant was killed between
 * moving a local ref and pushing it: the next start must see the server's state, not its own
 * unpushed ref. (Found by the HTTP chaos test: an edge killed before its first push of a round
 * waited for a merge until the round's deadline, because its new branch existed only locally.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { tempDir } from './helpers/temp.js';
import { PASSWORDS, serverFor } from './helpers/remote-federation.js';
import { createOpener } from '../operator/store/open-repository.js';
import { updateRef } from '../operator/git/refs.js';

const author = { name: 'x', email: 'x@y', timestamp: 1 };

test('a ref moved locally but never pushed (killed in between) is undone at the next start: a new branch, an advanced branch, a tag', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const cacheDir = path.join(dir, 'cache');
  const opener = () => createOpener({ cacheDir, auth: { username: 'aggregator', token: PASSWORDS.aggregator } });

  const before = await opener().require(server.url('global'), 'the global repository');
  const first = await before.writeCommit({ files: { f: Buffer.from('1') }, parents: [], message: 'first\n', author });
  await before.updateRef('refs/heads/fedgit/pushed-00000000', first, null);

  // What a SIGKILL after the local update and before the push leaves behind.
  const second = await before.writeCommit({ files: { f: Buffer.from('2') }, parents: [first], message: 'second\n', author });
  await updateRef(before.gitdir, 'refs/heads/fedgit/pushed-00000000', second, first);
  await updateRef(before.gitdir, 'refs/heads/fedgit/never-pushed-00000000', second, null);
  await updateRef(before.gitdir, 'refs/tags/never-pushed', second, null);

  const after = await opener().require(server.url('global'), 'the global repository');
  await after.refresh();
  assert.equal(after.gitdir, before.gitdir, 'the same mirror on disk');
  assert.equal(await after.readRef('refs/heads/fedgit/pushed-00000000'), first, 'back to what the server has');
  assert.equal(await after.readRef('refs/heads/fedgit/never-pushed-00000000'), null, 'a branch the server never got is gone');
  assert.equal(await after.readRef('refs/tags/never-pushed'), null, 'so is a tag');

  // And the mirror can push again from there.
  await after.updateRef('refs/heads/fedgit/never-pushed-00000000', second, null);
  assert.equal(await after.readRef('refs/heads/fedgit/never-pushed-00000000'), second);
});
