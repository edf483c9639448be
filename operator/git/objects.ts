/**
 * Git objects in a bare repository.
 *
 * Loose objects are written here, not with isomorphic-git: its writeBlob
 * deflates at level 6 (~40 MB/s) from one in-memory copy, and float weights
 * barely compress (measured: level 1 saves 7 % at a tenth of the speed of
 * level 0). A loose object is any zlib stream of `<type> <size>\0<bytes>`
 * named by its SHA-1, so large blobs are written as stored (level 0) zlib
 * streams and renamed into place (atomic: a reader never sees half an object).
 * Objects up to 4 MiB are deflated and inflated in one call; bigger ones are
 * written block by block from their pieces (stored-object.ts), and bigger loose files
 * made of stored blocks (fedgit's) are read straight into one buffer of the
 * announced size (stored-object.ts), others streamed through node's zlib into
 * one (peak memory ≈ 1× the object either way). Packed objects are read with isomorphic-git, after
 * reading their size from the pack index when a limit applies.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import git from 'isomorphic-git';
import { NotFound, CheckpointCorrupt } from '../errors.js';
import { packedObjectSize } from './pack-entry-size.js';
import { parseStoredLoose, readStoredLoose, streamStoredLoose, writeStoredLoose, type OpenContent } from './stored-object.js';
import { byteLength, digestHex, piecesOf, type Pieces } from './content.js';
import { parseObjectHeader } from './object-header.js';

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';
export type GitObject = { readonly type: ObjectType; readonly content: Buffer };

/** Objects at least this large (weights) are stored uncompressed inside the zlib stream. */
export const STORE_THRESHOLD_BYTES = 64 * 1024;
const CHUNK_BYTES = 1024 * 1024;
/**
 * Objects up to this size are written, and loose files up to it read, in one call: streaming costs
 * a few ms of event-loop turns per object, most of a round's work at a megabyte of weights.
 */
const WHOLE_FILE_BYTES = 4 * 1024 * 1024;

export function objectId(type: ObjectType, content: Uint8Array | Pieces): string {
  return digestHex('sha1', withHeader(type, piecesOf(content)));
}

/** `<type> <size>\0` followed by the content. */
const withHeader = (type: ObjectType, content: Pieces): Pieces => [Buffer.from(`${type} ${byteLength(content)}\0`, 'utf8'), ...content];

function loosePath(gitdir: string, oid: string): string {
  return path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
}

/** The loose file's size, or null when there is none (synchronous: see `readLooseObject`). */
function looseSize(file: string): number | null {
  return fs.statSync(file, { throwIfNoEntry: false })?.size ?? null;
}

/** Writes a loose object; big `content` in pieces (a checkpoint's header and tensors) is never joined into one buffer. */
export async function writeObject(gitdir: string, type: ObjectType, content: Uint8Array | Pieces): Promise<string> {
  const size = byteLength(piecesOf(content));
  const object = withHeader(type, piecesOf(content));
  const oid = digestHex('sha1', object);
  const target = loosePath(gitdir, oid);
  if (looseSize(target) !== null) return oid;
  const temp = path.join(path.dirname(target), `tmp_obj_${randomBytes(6).toString('hex')}`);
  if (size <= WHOLE_FILE_BYTES) {
    writeWholeLoose(temp, target, deflateWhole(object, size));
    return oid;
  }
  await mkdir(path.dirname(target), { recursive: true });
  try {
    await writeStoredLoose(temp, object);
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  return oid;
}

/**
 * A small object's file written and renamed into place with the synchronous API, for the reason
 * small files are read with it (readLooseObject): a round writes a few commits and trees of a few
 * hundred bytes, on which four trips through the thread pool cost more than the writes.
 */
function writeWholeLoose(temp: string, target: string, file: Buffer): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  try {
    fs.writeFileSync(temp, file, { mode: 0o444, flag: 'wx' });
    fs.renameSync(temp, target);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}

/**
 * The loose file of a small object in one zlib call. A stored stream is given one output chunk of
 * its final size: zlib's default 16 KiB chunks cost a trip into C++ each and a join at the end,
 * most of the write of a megabyte of weights.
 */
function deflateWhole(object: Pieces, size: number): Buffer {
  return zlibStream(Buffer.concat(object), size);
}

/** `input` as a zlib stream under fedgit's rule: stored when `size` (the object's content) reaches STORE_THRESHOLD_BYTES, else deflated. */
export function zlibStream(input: Uint8Array, size = input.length): Buffer {
  if (size < STORE_THRESHOLD_BYTES) return zlib.deflateSync(input, { level: zlib.constants.Z_DEFAULT_COMPRESSION });
  return zlib.deflateSync(input, { level: zlib.constants.Z_NO_COMPRESSION, chunkSize: storedStreamBytes(input.length) });
}

/** A bound on a stored zlib stream's length: header, 5 bytes per block of at least 16 KiB, Adler-32. */
const storedStreamBytes = (bytes: number): number => bytes + 5 * (Math.ceil(bytes / 16_384) + 1) + 6;

export type ReadLimits = {
  /**
   * Refuse, before allocating, an object that announces more bytes than this. What an edge
   * wrote is read with the size the plan allows (a loose object's header can announce 4 GB
   * over 18 MB of zlib data).
   */
  readonly maxBytes?: number;
};

export async function readObject(gitdir: string, oid: string, limits: ReadLimits = {}): Promise<GitObject> {
  if (!/^[0-9a-f]{40}$/.test(oid)) throw new NotFound(`not a full object id: ${oid}`, { oid });
  const file = loosePath(gitdir, oid);
  const size = looseSize(file);
  if (size === null) return readPackedObject(gitdir, oid, limits);
  try {
    return await readLooseObject(file, size, oid, limits);
  } catch (cause) {
    if (cause instanceof CheckpointCorrupt) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return readPackedObject(gitdir, oid, limits);
    throw new CheckpointCorrupt(`object ${oid} in ${gitdir} is not a valid zlib stream`, { oid, gitdir }, { cause });
  }
}

/**
 * `readObject` a window at a time: the content goes to the sink `open` returns once the type and
 * size are known. Big loose objects of stored blocks (fedgit's) are read from the file in 1 MiB
 * windows, never whole; any other object is read whole and handed over in one window. Every check
 * of `readObject` applies, the hash only after the last window: nothing taken may be trusted before
 * this resolves.
 */
export async function streamObject(gitdir: string, oid: string, limits: ReadLimits, open: OpenContent): Promise<void> {
  if (await streamStoredObject(gitdir, oid, limits, open)) return;
  const object = await readObject(gitdir, oid, limits);
  open(object.type, object.content.length)(object.content);
}

/** False, with nothing handed over, when the object is not a big loose file of stored blocks. */
async function streamStoredObject(gitdir: string, oid: string, limits: ReadLimits, open: OpenContent): Promise<boolean> {
  if (!/^[0-9a-f]{40}$/.test(oid)) return false;
  const file = loosePath(gitdir, oid);
  const fail = (why: string) => new CheckpointCorrupt(`object ${oid} (${file}) ${why}`, { oid, file });
  try {
    if ((looseSize(file) ?? 0) <= WHOLE_FILE_BYTES) return false;
    const sha1 = await streamStoredLoose(file, limits.maxBytes, fail, passingThrough(open));
    if (sha1 === null) return false;
    if (sha1 !== oid) throw fail('does not hash to its name');
    return true;
  } catch (cause) {
    if (cause instanceof SinkFailure) throw cause.error;
    if (cause instanceof CheckpointCorrupt) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new CheckpointCorrupt(`object ${oid} in ${gitdir} is not a valid zlib stream`, { oid, gitdir }, { cause });
  }
}

/** What a sink threw, carried past the reader's own error handling unchanged. */
class SinkFailure {
  constructor(readonly error: unknown) {}
}

function passingThrough(open: OpenContent): OpenContent {
  const marked = <T>(run: () => T): T => {
    try {
      return run();
    } catch (error) {
      throw new SinkFailure(error);
    }
  };
  return (type, size) => {
    const sink = marked(() => open(type, size));
    return (bytes) => marked(() => sink(bytes));
  };
}

/**
 * Files up to WHOLE_FILE_BYTES are read synchronously: most are commits and trees of a few hundred
 * bytes, on which the promise API's trips through the thread pool cost more than the read, and a
 * 4 MiB read from the page cache holds the event loop for about a millisecond.
 */
async function readLooseObject(file: string, size: number, oid: string, limits: ReadLimits): Promise<GitObject> {
  const fail = (why: string) => new CheckpointCorrupt(`object ${oid} (${file}) ${why}`, { oid, file });
  const whole = size <= WHOLE_FILE_BYTES ? fs.readFileSync(file) : null;
  const stored = whole ? await parseStoredLoose(whole, limits.maxBytes, fail) : await readStoredLoose(file, limits.maxBytes, fail);
  if (!stored) return whole ? inflateLooseFile(whole, file, oid, limits) : streamLooseObject(file, oid, limits);
  if (stored.sha1 !== oid) throw fail('does not hash to its name');
  return { type: stored.type, content: stored.content };
}

/** A whole loose file in memory, inflated at most to what the limit allows (zlib stops there). */
function inflateLooseFile(deflated: Buffer, file: string, oid: string, limits: ReadLimits): GitObject {
  const fail = (why: string) => new CheckpointCorrupt(`object ${oid} (${file}) ${why}`, { oid, file });
  const maxOutputLength = limits.maxBytes !== undefined ? limits.maxBytes + 64 : undefined;
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(deflated, maxOutputLength !== undefined ? { maxOutputLength } : {});
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw fail(`is larger than the ${limits.maxBytes} bytes allowed here`);
    throw cause;
  }
  const header = parseObjectHeader(raw, limits.maxBytes, fail);
  if (!header) throw fail('has a bad header');
  const announced = header.size;
  const content = raw.subarray(header.headerBytes);
  if (content.length > announced) throw fail('is longer than its header says');
  if (content.length < announced) throw fail(`is truncated (${content.length} of ${announced} bytes)`);
  if (createHash('sha1').update(raw).digest('hex') !== oid) throw fail('does not hash to its name');
  return { type: header.type, content };
}

/** Streams a loose object into a buffer of exactly the size its header announces, checking its hash. */
async function streamLooseObject(file: string, oid: string, limits: ReadLimits): Promise<GitObject> {
  const fail = (why: string) => new CheckpointCorrupt(`object ${oid} (${file}) ${why}`, { oid, file });
  const hash = createHash('sha1');
  let header: Buffer = Buffer.alloc(0);
  let type: ObjectType | undefined;
  let content: Buffer | undefined;
  let filled = 0;
  const inflater = fs.createReadStream(file, { highWaterMark: CHUNK_BYTES }).pipe(zlib.createInflate({ chunkSize: CHUNK_BYTES }));
  for await (const chunk of inflater as AsyncIterable<Buffer>) {
    hash.update(chunk);
    let data = chunk;
    if (!content) {
      header = header.length ? Buffer.concat([header, chunk]) : chunk;
      const parsed = parseObjectHeader(header, limits.maxBytes, fail);
      if (!parsed) continue;
      type = parsed.type;
      content = Buffer.allocUnsafe(parsed.size);
      data = header.subarray(parsed.headerBytes);
    }
    if (filled + data.length > content.length) throw fail('is longer than its header says');
    data.copy(content, filled);
    filled += data.length;
  }
  if (!content || !type) throw fail('is empty or has no header');
  if (filled !== content.length) throw fail(`is truncated (${filled} of ${content.length} bytes)`);
  if (hash.digest('hex') !== oid) throw fail('does not hash to its name');
  return { type, content };
}

async function readPackedObject(gitdir: string, oid: string, limits: ReadLimits = {}): Promise<GitObject> {
  if (limits.maxBytes !== undefined) {
    const size = await packedObjectSize(gitdir, oid).catch(() => undefined);
    if (size !== undefined && size > limits.maxBytes) {
      throw new CheckpointCorrupt(`object ${oid} in ${gitdir} announces ${size} bytes, more than the ${limits.maxBytes} allowed here`, { oid, gitdir });
    }
  }
  let result;
  try {
    result = await git.readObject({ fs, gitdir, oid, format: 'content' });
  } catch (cause) {
    throw new NotFound(`object ${oid} not found in ${gitdir}`, { oid, gitdir });
  }
  const content = Buffer.from(result.object as Uint8Array);
  // A pack without a v2 index entry for it could not be checked above: the limit still holds for what fedgit hands on.
  if (limits.maxBytes !== undefined && content.length > limits.maxBytes) {
    throw new CheckpointCorrupt(`object ${oid} in ${gitdir} has ${content.length} bytes, more than the ${limits.maxBytes} allowed here`, { oid, gitdir });
  }
  return { type: result.type as ObjectType, content };
}

/** A temporary object file older than this was left by a killed writer (a write takes seconds at most). */
const STALE_TEMP_MS = 10 * 60_000;

/**
 * Removes `tmp_obj_*` files that killed writers left in `objects/??/` (an object is written
 * to a temporary file and renamed into place, so a kill can leave an empty or partial one).
 * Only old ones: a young one may belong to a writer at work in another process.
 */
export async function sweepStaleTempObjects(gitdir: string, nowMs = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  const objects = path.join(gitdir, 'objects');
  const fanout = await readdir(objects).catch(() => [] as string[]);
  for (const dir of fanout.filter((d) => /^[0-9a-f]{2}$/.test(d))) {
    for (const name of await readdir(path.join(objects, dir)).catch(() => [] as string[])) {
      if (!name.startsWith('tmp_obj_')) continue;
      const file = path.join(objects, dir, name);
      const age = await stat(file).then((st) => nowMs - st.mtimeMs, () => 0);
      if (age > STALE_TEMP_MS) {
        await rm(file, { force: true });
        removed.push(file);
      }
    }
  }
  return removed;
}

export async function hasObject(gitdir: string, oid: string): Promise<boolean> {
  if (looseSize(loosePath(gitdir, oid)) !== null) return true;
  try {
    await readPackedObject(gitdir, oid);
    return true;
  } catch {
    return false;
  }
}
