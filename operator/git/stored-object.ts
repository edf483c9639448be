/**
 * Loose objects whose zlib stream holds only stored (uncompressed) blocks — how fedgit writes
 * weights. Written from the object's pieces, with no deflate stream and no copy of the content.
 * Read straight from the file into one buffer of the announced size: no inflate stream and no
 * chunk per megabyte left for the garbage collector, so reading a 50 MB update costs 50 MB. The
 * reader returns null at the first compressed block (objects other tools wrote); the caller then
 * inflates the file as usual. RFC 1950 (zlib) and RFC 1951 §3.2.4 (stored blocks).
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { GitObject, ObjectType } from './objects.js';
import { parseObjectHeader } from './object-header.js';
import { slices, writeParts, type Pieces } from './content.js';

/** CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no dictionary, level "fastest", header checksum). */
const ZLIB_HEADER = Buffer.from([0x78, 0x01]);
const MAX_STORED_BLOCK = 0xffff;

/** Writes `<type> <size>\0` and the content (`pieces`, header first) to a new file as a stored zlib stream. */
export async function writeStoredLoose(file: string, pieces: Pieces): Promise<void> {
  const handle = await open(file, 'wx', 0o444);
  try {
    await writeParts(handle, storedStream(pieces));
  } finally {
    await handle.close();
  }
}

/** The zlib stream: a stored block per slice of at most 64 KiB, an empty final block, the Adler-32. */
function* storedStream(pieces: Pieces): Generator<Uint8Array> {
  yield ZLIB_HEADER;
  let adler = 1;
  for (const slice of slices(pieces, MAX_STORED_BLOCK)) {
    yield storedBlockHead(slice.length, false);
    yield slice;
    adler = adler32(adler, slice);
  }
  yield storedBlockHead(0, true);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(adler);
  yield trailer;
}

function storedBlockHead(length: number, final: boolean): Buffer {
  const head = Buffer.alloc(5);
  head[0] = final ? 1 : 0;
  head.writeUInt16LE(length, 1);
  head.writeUInt16LE(length ^ 0xffff, 3);
  return head;
}

/** RFC 1950 §8.2, reduced every 5552 bytes (the most that cannot overflow before the modulo). */
function adler32(state: number, bytes: Uint8Array): number {
  let a = state & 0xffff;
  let b = state >>> 16;
  for (let at = 0; at < bytes.length; ) {
    const end = Math.min(at + 5552, bytes.length);
    for (; at < end; at++) {
      a += bytes[at]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

type Fail = (why: string) => Error;

/** Reads exactly `length` bytes at the file position into `into[at…]`; a short file is truncated. */
async function readExactly(handle: FileHandle, position: number, into: Buffer, at: number, length: number, fail: Fail): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, at + done, length - done, position + done);
    if (bytesRead === 0) throw fail('is truncated');
    done += bytesRead;
  }
}

/** The object and the SHA-1 of its header and content, or null when the stream has a compressed block. */
export type StoredRead = GitObject & { readonly sha1: string };

export async function readStoredLoose(file: string, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    await readExactly(handle, 0, head, 0, 2, fail);
    // CM 8 (deflate), no preset dictionary, header checksum (RFC 1950 §2.2).
    if ((head[0]! & 0x0f) !== 8 || (head[1]! & 0x20) !== 0 || (head[0]! * 256 + head[1]!) % 31 !== 0) return null;
    return await readStoredBlocks(handle, 2, maxBytes, fail);
  } finally {
    await handle.close();
  }
}

async function readStoredBlocks(handle: FileHandle, start: number, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  const hash = createHash('sha1');
  const blockHead = Buffer.alloc(5);
  let position = start;
  let header = Buffer.alloc(0);
  let object: { type: ObjectType; content: Buffer } | undefined;
  let filled = 0;
  for (let final = false; !final; ) {
    await readExactly(handle, position, blockHead, 0, 5, fail);
    final = (blockHead[0]! & 1) === 1;
    if (((blockHead[0]! >> 1) & 3) !== 0) return null;
    const length = blockHead.readUInt16LE(1);
    if ((length ^ blockHead.readUInt16LE(3)) !== 0xffff) throw fail('is not a valid zlib stream (a stored block\'s length check fails)');
    position += 5;
    if (object) {
      if (filled + length > object.content.length) throw fail('is longer than its header says');
      await readExactly(handle, position, object.content, filled, length, fail);
      hash.update(object.content.subarray(filled, filled + length));
      filled += length;
    } else {
      const data = Buffer.allocUnsafe(length);
      await readExactly(handle, position, data, 0, length, fail);
      hash.update(data);
      header = Buffer.concat([header, data]);
      const started = startObject(header, maxBytes, fail);
      if (started) ({ object, filled } = started);
    }
    position += length;
  }
  if (!object) throw fail('is empty or has no header');
  if (filled !== object.content.length) throw fail(`is truncated (${filled} of ${object.content.length} bytes)`);
  return { ...object, sha1: hash.digest('hex') };
}

/** Once the `<type> <size>\0` header is in, the object's buffer with what followed the header in it. */
function startObject(header: Buffer, maxBytes: number | undefined, fail: Fail): { object: { type: ObjectType; content: Buffer }; filled: number } | null {
  const parsed = parseObjectHeader(header, maxBytes, fail);
  if (!parsed) return null;
  const rest = header.subarray(parsed.headerBytes);
  if (rest.length > parsed.size) throw fail('is longer than its header says');
  const content = Buffer.allocUnsafe(parsed.size);
  rest.copy(content, 0);
  return { object: { type: parsed.type, content }, filled: rest.length };
}
