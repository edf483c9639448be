/** Ref updates are compare-and-swap across processes: concurrent writers never silently lose a commit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir, git } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { RefConflict } from '../operator/errors.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'cas-worker.js');

test('updateRef refuses a stale expected value', async (t) => {
  const repo = await Repository.ensureBare(path.join(await tempDir(t), 'r.git'));
  const a = await repo.writeCommit({ files: { f: Buffer.from('a') }, parents: [], message: 'a\n', author: { name: 'x', email: 'x@y', timestamp: 1 } });
  const b = await repo.writeCommit({ files: { f: Buffer.from('b') }, parents: [a], message: 'b\n', author: { name: 'x', email: 'x@y', timestamp: 2 } });
  await repo.updateRef('refs/heads/x', a, null);
  await assert.rejects(repo.updateRef('refs/heads/x', b, null), RefConflict);
  await repo.updateRef('refs/heads/x', b, a);
  await assert.rejects(repo.updateRef('refs/heads/x', a, a), RefConflict);
  assert.equal(await repo.readRef('refs/heads/x'), b);
  // packed refs are read too
  git(repo.gitdir, 'pack-refs', '--all');
  assert.equal(await repo.readRef('refs/heads/x'), b);
  await repo.updateRef('refs/heads/x', a, b);
  assert.equal(git(repo.gitdir, 'rev-parse', 'refs/heads/x').trim(), a);
});

test('4 processes × 25 commits on one branch: all 100 commits are in the history', async (t) => {
  const gitdir = path.join(await tempDir(t), 'r.git');
  await Repository.ensureBare(gitdir);
  const workers = Array.from({ length: 4 }, (_, i) =>
    new Promise<number | null>((resolve) => spawn(process.execPath, [WORKER, gitdir, `w${i}`, '25'], { stdio: 'inherit' }).on('exit', resolve)),
  );
  assert.deepEqual(await Promise.all(workers), [0, 0, 0, 0]);
  const count = Number(git(gitdir, 'rev-list', '--count', 'refs/heads/main').trim());
  assert.equal(count, 100);
  git(gitdir, 'fsck', '--strict');
});
