/** fedgit's object writer and reader agree with native git, loose and packed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { tempDir, git } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { renderMessage, parseTrailers } from '../operator/git/names.js';
import { readObject } from '../operator/git/objects.js';
import { packedObjectSize } from '../operator/git/pack-entry-size.js';
import { readdir, writeFile } from 'node:fs/promises';

test('commits written by fedgit are valid for native git, and fedgit reads them back after git gc packs them', async (t) => {
  const repo = await Repository.ensureBare(path.join(await tempDir(t), 'r.git'));
  const weights = randomBytes(3 * 1024 * 1024 + 17);
  const message = renderMessage('subject line', [['Fedgit-Round', '1'], ['Fedgit-Merged', 'a 0123 size=3 weight=0.5']]);
  const oid = await repo.writeCommit({ files: { 'weights.safetensors': weights, 'metrics.json': Buffer.from('{}') }, parents: [], message, author: { name: 'fedgit edge', email: 'e@fedgit.invalid', timestamp: 1_700_000_000 } });
  await repo.updateRef('refs/heads/main', oid, null);
  git(repo.gitdir, 'fsck', '--strict');
  assert.ok(execFileSync('git', ['--git-dir', repo.gitdir, 'cat-file', 'blob', 'main:weights.safetensors'], { maxBuffer: 1 << 30 }).equals(weights));
  assert.equal(git(repo.gitdir, 'log', '-1', '--format=%(trailers:key=Fedgit-Round,valueonly)').trim(), '1');
  assert.deepEqual(parseTrailers(message), [['Fedgit-Round', '1'], ['Fedgit-Merged', 'a 0123 size=3 weight=0.5']]);

  git(repo.gitdir, 'gc', '--quiet');
  git(repo.gitdir, 'prune', '--expire=now');
  const commit = await repo.readCommit(oid);
  assert.equal(commit.message, message);
  assert.ok((await repo.readFile(oid, 'weights.safetensors')).equals(weights));
  assert.equal(await repo.resolve(oid.slice(0, 8)), oid);
  assert.equal(await repo.resolve('main'), oid);
});

test('a damaged loose object is reported as corrupt, never returned', async (t) => {
  const { writeFile, readFile } = await import('node:fs/promises');
  const zlib = await import('node:zlib');
  const repo = await Repository.ensureBare(path.join(await tempDir(t), 'r.git'));
  const oid = await repo.writeCommit({ files: { 'weights.safetensors': randomBytes(200_000) }, parents: [], message: 'm\n', author: { name: 'x', email: 'x@y', timestamp: 1 } });
  const tree = (await repo.readCommit(oid)).tree;
  const treeText = git(repo.gitdir, 'ls-tree', tree);
  const blob = treeText.split(/\s+/)[2]!;
  const file = path.join(repo.gitdir, 'objects', blob.slice(0, 2), blob.slice(2));
  const original = await readFile(file);
  await writeFile(file, original.subarray(0, original.length - 5000), { mode: 0o644 });
  await assert.rejects(repo.readFile(oid, 'weights.safetensors'), /CheckpointCorrupt|zlib|truncated/);
  const inflated = zlib.inflateSync(original);
  inflated[inflated.length - 1] = inflated[inflated.length - 1]! ^ 0xff;
  await writeFile(file, zlib.deflateSync(inflated));
  await assert.rejects(repo.readFile(oid, 'weights.safetensors'), /does not hash to its name/);
});

test('packed objects: their size is read from the pack index and entry header, deltas included, and a limit refuses them before inflating', async (t) => {
  const dir = await tempDir(t);
  const work = path.join(dir, 'w');
  execFileSync('git', ['init', '-q', work]);
  const big = Buffer.alloc(300_000, 'fedgit weights ');
  for (const [i, content] of [big, Buffer.concat([big, Buffer.from('a small change')]), Buffer.from('tiny\n')].entries()) {
    await writeFile(path.join(work, `f${i}`), content);
    execFileSync('git', ['-C', work, 'add', '.']);
    execFileSync('git', ['-C', work, '-c', 'user.name=x', '-c', 'user.email=x@y', 'commit', '-q', '-m', `c${i}`]);
  }
  execFileSync('git', ['-C', work, 'repack', '-adf', '-q']);
  const gitdir = path.join(work, '.git');
  const listing = execFileSync('git', ['-C', work, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objectsize)'], { encoding: 'utf8' }).trim().split('\n');
  const deltas = execFileSync('git', ['-C', work, 'verify-pack', '-v', ...(await readdir(path.join(gitdir, 'objects', 'pack'))).filter((n) => n.endsWith('.idx')).map((n) => path.join(gitdir, 'objects', 'pack', n))], { encoding: 'utf8' });
  assert.match(deltas, /chain length = 1/, 'the pack holds at least one delta');
  for (const line of listing) {
    const [oid, size] = line.split(' ');
    assert.equal(await packedObjectSize(gitdir, oid!), Number(size), `size of ${oid}`);
  }
  const largest = listing.map((l) => l.split(' ')).sort((a, b) => Number(b[1]) - Number(a[1]))[0]!;
  await assert.rejects(readObject(gitdir, largest[0]!, { maxBytes: 1000 }), /announces \d+ bytes, more than the 1000 allowed/);
  assert.equal((await readObject(gitdir, largest[0]!, { maxBytes: Number(largest[1]) })).content.length, Number(largest[1]));
  assert.equal(await packedObjectSize(gitdir, '0'.repeat(40)), undefined);
});
