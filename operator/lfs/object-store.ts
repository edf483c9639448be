/**
 * A repository's Git LFS objects, in the layout `git lfs` itself uses:
 * `<gitdir>/lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`, temporary files in `<gitdir>/lfs/tmp`.
 * Every object is written to a temporary file while its SHA-256 and length are checked, and
 * renamed into place only when both match, so a reader never sees half an object or one that
 * does not hash to its name. Reads check the hash again: a file damaged on disk is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointCorrupt, LfsObjectMissing, NotFound } from '../errors.js';
import type { LfsPointer } from './pointer.js';
import { byteLength, collect, digestHex, piecesOf, writeAll, writeParts, type ContentSink, type Pieces } from '../git/content.js';

const CHUNK_BYTES = 1024 * 1024;

export function lfsObjectPath(gitdir: string, oid: string): string {
  if (!/^[0-9a-f]{64}$/.test(oid)) throw new NotFound(`not an LFS object id: ${oid.slice(0, 80)}`, { oid: oid.slice(0, 80) });
  return path.join(gitdir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
}

/** Whether the store holds a file of the pointer's size under its oid (the hash is checked when it is read). */
export async function hasLfsObject(gitdir: string, pointer: LfsPointer): Promise<boolean> {
  return stat(lfsObjectPath(gitdir, pointer.oid)).then((s) => s.isFile() && s.size === pointer.size, () => false);
}

/** The size of the file the store holds under `oid`, or null when it holds none (never fetched, or pruned). */
export async function storedLfsObjectSize(gitdir: string, oid: string): Promise<number | null> {
  return stat(lfsObjectPath(gitdir, oid)).then((s) => (s.isFile() ? s.size : null), () => null);
}

async function tempFile(gitdir: string, oid: string): Promise<string> {
  const dir = path.join(gitdir, 'lfs', 'tmp');
  await mkdir(dir, { recursive: true });
  return path.join(dir, `${oid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Stores `content` (already in memory, hashed here once; pieces are written as they are, never
 * joined) and returns its pointer; a no-op when the object is there.
 */
export async function writeLfsObject(gitdir: string, content: Uint8Array | Pieces): Promise<LfsPointer> {
  const pieces = piecesOf(content);
  const pointer = { oid: digestHex('sha256', pieces), size: byteLength(pieces) };
  if (await hasLfsObject(gitdir, pointer)) return pointer;
  const temp = await tempFile(gitdir, pointer.oid);
  try {
    const handle = await open(temp, 'wx', 0o444);
    try {
      await writeParts(handle, pieces);
    } finally {
      await handle.close();
    }
    await mkdir(path.dirname(lfsObjectPath(gitdir, pointer.oid)), { recursive: true });
    await rename(temp, lfsObjectPath(gitdir, pointer.oid));
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  return pointer;
}

/**
 * Streams an object into the store, checking its length and SHA-256 against `pointer` on the way;
 * nothing is stored unless both match. `source` names where the bytes came from in errors.
 */
export async function receiveLfsObject(gitdir: string, pointer: LfsPointer, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, source: string): Promise<void> {
  const target = lfsObjectPath(gitdir, pointer.oid);
  const temp = await tempFile(gitdir, pointer.oid);
  const hash = createHash('sha256');
  let received = 0;
  const handle = await open(temp, 'wx', 0o444);
  // Network chunks are small (16–64 KiB): written 1 MiB at a time, one system call each.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  try {
    for await (const chunk of chunks) {
      received += chunk.length;
      if (received > pointer.size) throw new CheckpointCorrupt(`LFS object ${pointer.oid} from ${source} is longer than the ${pointer.size} bytes its pointer says`, { oid: pointer.oid });
      hash.update(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= CHUNK_BYTES) {
        await writeAll(handle, pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
    await writeAll(handle, pending, pendingBytes);
    await handle.close();
    if (received !== pointer.size) throw new CheckpointCorrupt(`LFS object ${pointer.oid} from ${source} has ${received} bytes, its pointer says ${pointer.size}`, { oid: pointer.oid });
    if (hash.digest('hex') !== pointer.oid) throw new CheckpointCorrupt(`LFS object ${pointer.oid} from ${source} does not hash to its name (SHA-256)`, { oid: pointer.oid });
    await mkdir(path.dirname(target), { recursive: true });
    await rename(temp, target);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw e;
  }
}

/**
 * The object's bytes, after checking its size and SHA-256; `source` names the file in errors.
 * `verified`: it was checked on arrival a moment ago (a download), so hashing again is skipped.
 */
export async function readLfsObject(gitdir: string, pointer: LfsPointer, source: string, options: { verified?: boolean } = {}): Promise<Buffer> {
  const collected = collect(pointer.size);
  await streamLfsObject(gitdir, pointer, source, collected.sink, options);
  return collected.content();
}

/**
 * `readLfsObject` a 1 MiB window at a time into `sink`, never whole; the hash is checked after the
 * last window, so nothing taken may be trusted before this resolves.
 */
export async function streamLfsObject(gitdir: string, pointer: LfsPointer, source: string, sink: ContentSink, options: { verified?: boolean } = {}): Promise<void> {
  const file = lfsObjectPath(gitdir, pointer.oid);
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LfsObjectMissing(`${source}: LFS object ${pointer.oid} is not in this repository's store; a retention policy (fedgit prune) may have pruned it: restore it as ${file} (docs/lfs.md)`, { oid: pointer.oid, gitdir });
    }
    throw e;
  }
  try {
    const { size } = await handle.stat();
    if (size !== pointer.size) throw new CheckpointCorrupt(`${source}: LFS object ${pointer.oid} (${file}) has ${size} bytes, its pointer says ${pointer.size}`, { oid: pointer.oid, file });
    const window = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size));
    const hash = options.verified ? undefined : createHash('sha256');
    for (let at = 0; at < size; ) {
      const { bytesRead } = await handle.read(window, 0, Math.min(window.length, size - at), at);
      if (bytesRead === 0) throw new CheckpointCorrupt(`${source}: LFS object ${pointer.oid} (${file}) was truncated while being read`, { oid: pointer.oid, file });
      hash?.update(window.subarray(0, bytesRead));
      sink(window.subarray(0, bytesRead));
      at += bytesRead;
    }
    if (hash && hash.digest('hex') !== pointer.oid) throw new CheckpointCorrupt(`${source}: LFS object ${pointer.oid} (${file}) does not hash to its name: damaged on disk`, { oid: pointer.oid, file });
  } finally {
    await handle.close();
  }
}

/** A stream of the stored object's bytes (for an upload; the receiver checks the hash). */
export function openLfsObject(gitdir: string, oid: string): fs.ReadStream {
  return fs.createReadStream(lfsObjectPath(gitdir, oid), { highWaterMark: CHUNK_BYTES });
}

/** The size of the stored file under `oid`, or null when there is none (nothing is read). */
export async function storedLfsObjectBytes(gitdir: string, oid: string): Promise<number | null> {
  return stat(lfsObjectPath(gitdir, oid)).then((s) => (s.isFile() ? s.size : null), () => null);
}

/**
 * Removes one object from the store and returns the bytes it took, or null when it was not there.
 * One unlink(2): atomic, so a reader finds either the whole file or none (one that has it open
 * reads on to the end); nothing is written. The `<aa>/<bb>` folders stay: a writer may be about to
 * rename a new object into one of them.
 */
export async function removeLfsObject(gitdir: string, oid: string): Promise<number | null> {
  const file = lfsObjectPath(gitdir, oid);
  const bytes = await storedLfsObjectBytes(gitdir, oid);
  if (bytes === null) return null;
  try {
    await unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return bytes;
}

export type LfsStoreUsage = { readonly objects: number; readonly bytes: number };

/** How many objects the store holds and their bytes (files named by an oid under `lfs/objects/<aa>/<bb>/`). */
export async function readLfsStoreUsage(gitdir: string): Promise<LfsStoreUsage> {
  const root = path.join(gitdir, 'lfs', 'objects');
  let objects = 0, bytes = 0;
  const list = (dir: string) => readdir(dir).catch(() => [] as string[]);
  for (const a of (await list(root)).filter((d) => /^[0-9a-f]{2}$/.test(d))) {
    for (const b of (await list(path.join(root, a))).filter((d) => /^[0-9a-f]{2}$/.test(d))) {
      for (const name of (await list(path.join(root, a, b))).filter((n) => /^[0-9a-f]{64}$/.test(n) && n.startsWith(a + b))) {
        const size = await storedLfsObjectBytes(gitdir, name);
        if (size === null) continue;
        objects++;
        bytes += size;
      }
    }
  }
  return { objects, bytes };
}

/** A temporary file older than this was left by a killed writer or download. */
const STALE_TEMP_MS = 60 * 60_000;

/** Removes old files from `lfs/tmp` (a kill mid-transfer leaves one); young ones may belong to a transfer at work. */
export async function sweepStaleLfsTemp(gitdir: string, nowMs = Date.now()): Promise<string[]> {
  const dir = path.join(gitdir, 'lfs', 'tmp');
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    const age = await stat(file).then((st) => nowMs - st.mtimeMs, () => 0);
    if (age > STALE_TEMP_MS) {
      await rm(file, { force: true });
      removed.push(file);
    }
  }
  return removed;
}
