/**
 * Big loose objects fedgit wrote (a zlib stream of stored blocks) are read straight into one
 * buffer; anything else — a compressed stream as native git writes it — is inflated as before;
 * damage of every kind is refused, never returned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
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

/** A zlib stream of `raw` in stored blocks of `blockBytes` (git accepts any block size). */
function storedStream(raw: Buffer, blockBytes: number): Buffer {
  const parts: Buffer[] = [Buffer.from([0x78, 0x01])];
  for (let at = 0; at < raw.length; at += blockBytes) {
    const block = raw.subarray(at, at + blockBytes);
    const head = Buffer.alloc(5);
    head[0] = at + blockBytes >= raw.length ? 1 : 0;
    head.writeUInt16LE(block.length, 1);
    head.writeUInt16LE(block.length ^ 0xffff, 3);
    parts.push(head, block);
  }
  parts.push(zlib.deflateSync(raw).subarray(-4)); // the Adler-32 of raw ends every zlib stream of it
  return Buffer.concat(parts);
}

test('small stored objects are gathered in place: any block size, a header split across blocks, read back exactly as git reads them', async (t) => {
  const gitdir = (await Repository.ensureBare(path.join(await tempDir(t), 'r.git'))).gitdir;
  for (const [size, blockBytes] of [[300, 3], [300, 7], [70_000, 65_535], [1_000_003, 65_535], [1_000_003, 4_099]] as const) {
    const content = randomBytes(size);
    const raw = Buffer.concat([Buffer.from(`blob ${size}\0`), content]);
    const oid = createHash('sha1').update(raw).digest('hex');
    await mkdir(path.dirname(loose(gitdir, oid)), { recursive: true });
    await writeFile(loose(gitdir, oid), storedStream(raw, blockBytes));
    const read = await readObject(gitdir, oid);
    assert.ok(read.content.equals(content), `${size} bytes in blocks of ${blockBytes}`);
    assert.equal(read.content.byteOffset % 8, 0, 'tensors parsed from it can be views');
    assert.ok(Buffer.from(execFileSync('git', ['--git-dir', gitdir, 'cat-file', 'blob', oid], { maxBuffer: 1 << 26 })).equals(content));
  }
});

test('a small object fedgit wrote is one stored stream git reads; a damaged one is refused', async (t) => {
  const gitdir = (await Repository.ensureBare(path.join(await tempDir(t), 'r.git'))).gitdir;
  const content = randomBytes(1_000_000);
  const oid = await writeObject(gitdir, 'blob', [content.subarray(0, 13), content.subarray(13)]);
  assert.ok(Buffer.from(execFileSync('git', ['--git-dir', gitdir, 'cat-file', 'blob', oid], { maxBuffer: 1 << 26 })).equals(content));
  assert.ok((await readObject(gitdir, oid)).content.equals(content));
  const file = loose(gitdir, oid);
  await chmod(file, 0o644);
  const damaged = await readFile(file);
  damaged[damaged.length - 5000]! ^= 1;
  await writeFile(file, damaged);
  await assert.rejects(readObject(gitdir, oid), (e: Error) => e instanceof CheckpointCorrupt && /does not hash to its name/.test(e.message));
});
