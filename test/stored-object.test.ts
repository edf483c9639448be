/**
 * Big loose objects fedgit wrote (a zlib stream of stored blocks) are read straight into one
 * buffer; anything else — a compressed stream as native git writes it — is inflated as before;
 * damage of every kind is refused, never returned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFile, truncate, writeFile, chmod } from 'node:fs/promises';
import { tempDir, git } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { readObject, writeObject } from '../operator/git/objects.js';
import { CheckpointCorrupt } from '../operator/errors.js';

const BIG = 6 * 1024 * 1024 + 12345; // above the one-call threshold (4 MiB), several stored blocks, not a multiple of a block
const loose = (gitdir: string, oid: string) => path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));

test('a big object fedgit wrote reads back byte for byte, native git agrees, and a limit refuses it before reading', async (t) => {
  const gitdir = (await Repository.ensureBare(path.join(await tempDir(t), 'r.git'))).gitdir;
  const content = randomBytes(BIG);
  const oid = await writeObject(gitdir, 'blob', content);
  const read = await readObject(gitdir, oid);
  assert.equal(read.type, 'blob');
  assert.ok(read.content.equals(content));
  assert.ok(Buffer.from(execFileSync('git', ['--git-dir', gitdir, 'cat-file', 'blob', oid], { maxBuffer: 1 << 26 })).equals(content));
  await assert.rejects(readObject(gitdir, oid, { maxBytes: BIG - 1 }), (e: Error) => e instanceof CheckpointCorrupt && /announces 6303801 bytes, more than the 6303800 allowed/.test(e.message));
});

test('a big object native git wrote (compressed blocks) is inflated as before', async (t) => {
  const dir = await tempDir(t);
  const gitdir = (await Repository.ensureBare(path.join(dir, 'r.git'))).gitdir;
  const content = Buffer.alloc(BIG, 'fedgit ');
  content.set(randomBytes(BIG / 2), 0);
  const file = path.join(dir, 'blob');
  await writeFile(file, content);
  const oid = git(gitdir, 'hash-object', '-w', file).trim();
  assert.ok((await readObject(gitdir, oid)).content.equals(content));
});

test('a damaged big stored object is refused: a flipped byte, a cut file, a broken block length', async (t) => {
  const gitdir = (await Repository.ensureBare(path.join(await tempDir(t), 'r.git'))).gitdir;
  const cases: Array<[string, (file: string) => Promise<void>, RegExp]> = [
    ['a flipped content byte', async (file) => { const b = await readFile(file); b[b.length - 100]! ^= 1; await writeFile(file, b); }, /does not hash to its name/],
    ['a cut file', (file) => truncate(file, 5 * 1024 * 1024), /is truncated/],
    ['a broken block length', async (file) => { const b = await readFile(file); b[3]! ^= 0xff; await writeFile(file, b); }, /stored block's length check fails|is longer than its header says/],
  ];
  for (const [what, damage, message] of cases) {
    const oid = await writeObject(gitdir, 'blob', randomBytes(BIG));
    const file = loose(gitdir, oid);
    await chmod(file, 0o644);
    await damage(file);
    await assert.rejects(readObject(gitdir, oid), (e: Error) => e instanceof CheckpointCorrupt && message.test(e.message), what);
  }
});
