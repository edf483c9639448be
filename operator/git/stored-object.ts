/**
 * Reads a loose object whose zlib stream holds only stored (uncompressed) blocks — how fedgit
 * writes weights — straight from the file into one buffer of the announced size: no inflate
 * stream and no chunk per megabyte left for the garbage collector, so reading a 50 MB update
 * costs 50 MB. Returns null at the first compressed block (objects other tools wrote); the caller
 * then inflates the file as usual. RFC 1950 (zlib) and RFC 1951 §3.2.4 (stored blocks).
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { GitObject, ObjectType } from './objects.js';
import { parseObjectHeader } from './object-header.js';

type Fail = (why: string) => Error;

/** Copies exactly `length` bytes at `position` of the loose file into `into[at…]`; a short file is truncated. */
type ReadExactly = (position: number, into: Buffer, at: number, length: number) => Promise<void>;

function fromHandle(handle: FileHandle, fail: Fail): ReadExactly {
  return async (position, into, at, length) => {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(into, at + done, length - done, position + done);
      if (bytesRead === 0) throw fail('is truncated');
      done += bytesRead;
    }
  };
}

function fromBytes(file: Buffer, fail: Fail): ReadExactly {
  return async (position, into, at, length) => {
    if (position + length > file.length) throw fail('is truncated');
    file.copy(into, at, position, position + length);
  };
}

/** The object and the SHA-1 of its header and content, or null when the stream has a compressed block. */
export type StoredRead = GitObject & { readonly sha1: string };

export async function readStoredLoose(file: string, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  const handle = await open(file, 'r');
  try {
    return await readStoredStream(fromHandle(handle, fail), maxBytes, fail);
  } finally {
    await handle.close();
  }
}

/**
 * The same from a loose file already in memory (small objects): the content lands in a buffer of
 * its own, so tensors parsed from it can be views (4-byte aligned), not copies.
 */
export function parseStoredLoose(file: Buffer, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  return readStoredStream(fromBytes(file, fail), maxBytes, fail);
}

async function readStoredStream(readExactly: ReadExactly, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  const head = Buffer.alloc(2);
  await readExactly(0, head, 0, 2);
  // CM 8 (deflate), no preset dictionary, header checksum (RFC 1950 §2.2).
  if ((head[0]! & 0x0f) !== 8 || (head[1]! & 0x20) !== 0 || (head[0]! * 256 + head[1]!) % 31 !== 0) return null;
  return readStoredBlocks(readExactly, 2, maxBytes, fail);
}

async function readStoredBlocks(readExactly: ReadExactly, start: number, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  const hash = createHash('sha1');
  const blockHead = Buffer.alloc(5);
  let position = start;
  let header = Buffer.alloc(0);
  let object: { type: ObjectType; content: Buffer } | undefined;
  let filled = 0;
  for (let final = false; !final; ) {
    await readExactly(position, blockHead, 0, 5);
    final = (blockHead[0]! & 1) === 1;
    if (((blockHead[0]! >> 1) & 3) !== 0) return null;
    const length = blockHead.readUInt16LE(1);
    if ((length ^ blockHead.readUInt16LE(3)) !== 0xffff) throw fail('is not a valid zlib stream (a stored block\'s length check fails)');
    position += 5;
    if (object) {
      if (filled + length > object.content.length) throw fail('is longer than its header says');
      await readExactly(position, object.content, filled, length);
      hash.update(object.content.subarray(filled, filled + length));
      filled += length;
    } else {
      const data = Buffer.allocUnsafe(length);
      await readExactly(position, data, 0, length);
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
