/**
 * Loose objects whose zlib stream holds only stored (uncompressed) blocks — how fedgit writes
 * weights. Written from the object's pieces, with no deflate stream and no copy of the content.
 * Read from the file a 1 MiB window at a time, with no inflate stream and no chunk per megabyte
 * left for the garbage collector: into one buffer of the announced size (reading a 50 MB update
 * costs 50 MB), or into a sink that never holds the whole (the merge). The block headers are
 * read first: when one is compressed (objects other tools wrote) the reader returns null before
 * handing anything over, and the caller inflates the file as usual. RFC 1950 (zlib) and
 * RFC 1951 §3.2.4 (stored blocks).
 */
import { createHash } from 'node:crypto';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import type { GitObject, ObjectType } from './objects.js';
import { parseObjectHeader } from './object-header.js';
import { collect, slices, writeParts, type ContentSink, type Pieces } from './content.js';

/** CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no dictionary, level "fastest", header checksum). */
const ZLIB_HEADER = Buffer.from([0x78, 0x01]);
const MAX_STORED_BLOCK = 0xffff;

/** Writes `<type> <size>\0` and the content (`pieces`, header first) to a new file as a stored zlib stream. */
export async function writeStoredLoose(file: string, pieces: Pieces): Promise<void> {
  const handle = await openFile(file, 'wx', 0o444);
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

/** RFC 1950 §8.2, reduced modulo 65521 every 5552 bytes as zlib does. */
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

/** Where a loose file's bytes come from: the file itself, or the whole file already in memory. */
type Source = FileHandle | Buffer;

/** Reads exactly `length` bytes at the file position into `into[at…]`; a short file is truncated. */
async function readExactly(source: Source, position: number, into: Buffer, at: number, length: number, fail: Fail): Promise<void> {
  if (Buffer.isBuffer(source)) {
    if (position + length > source.length) throw fail('is truncated');
    source.copy(into, at, position, position + length);
    return;
  }
  let done = 0;
  while (done < length) {
    const { bytesRead } = await source.read(into, at + done, length - done, position + done);
    if (bytesRead === 0) throw fail('is truncated');
    done += bytesRead;
  }
}

/** The object and the SHA-1 of its header and content, or null when the stream has a compressed block. */
export type StoredRead = GitObject & { readonly sha1: string };

export async function readStoredLoose(file: string, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  let object: { type: ObjectType; content: () => Buffer } | undefined;
  const sha1 = await streamStoredLoose(file, maxBytes, fail, (type, size) => {
    const collected = collect(size);
    object = { type, content: collected.content };
    return collected.sink;
  });
  return sha1 === null ? null : { type: object!.type, content: object!.content(), sha1 };
}

/**
 * The same from a whole loose file already in memory (small objects). The content is gathered in
 * place, block after block, to the start of `file` — every block lies after where its bytes go,
 * so nothing is overwritten before it is read and hashed — and returned as a view on it: no
 * second buffer of the object's size, and tensors parsed from it can be views (the start of a
 * file's buffer is 8-byte aligned). `file` is consumed.
 */
export async function parseStoredLoose(file: Buffer, maxBytes: number | undefined, fail: Fail): Promise<StoredRead | null> {
  const blocks = await storedBlocks(file, fail);
  if (!blocks) return null;
  let type: ObjectType | undefined;
  let filled = 0;
  const reader = objectReader(maxBytes, fail, (announced) => {
    type = announced;
    return (bytes) => {
      // A view on `file` moves with memmove (copyWithin); the header's first block may come joined in a buffer of its own.
      const at = viewOffset(file, bytes);
      if (at === null) file.set(bytes, filled);
      else file.copyWithin(filled, at, at + bytes.length);
      filled += bytes.length;
    };
  });
  for (const { position, length } of blocks) {
    if (position + length > file.length) throw fail('is truncated');
    reader.take(file.subarray(position, position + length));
  }
  const sha1 = reader.finish();
  return { type: type!, content: file.subarray(0, filled), sha1 };
}

/** Where `view` starts in `whole`, or null when it is not a view on it (small buffers can share a pool's memory). */
function viewOffset(whole: Buffer, view: Uint8Array): number | null {
  const at = view.byteOffset - whole.byteOffset;
  return view.buffer === whole.buffer && at >= 0 && at + view.length <= whole.length ? at : null;
}

/** Receives an object's type and size once its header is read, and returns the sink for its content. */
export type OpenContent = (type: ObjectType, size: number) => ContentSink;

const WINDOW_BYTES = 1024 * 1024;

/**
 * The object's content handed to `open`'s sink in windows of 1 MiB, read from the file's stored
 * blocks; returns the SHA-1 of header and content, which the caller compares with the object's
 * name once the last window is in. Null, before anything is handed over, when a block is compressed.
 */
export async function streamStoredLoose(file: string, maxBytes: number | undefined, fail: Fail, open: OpenContent): Promise<string | null> {
  const handle = await openFile(file, 'r');
  try {
    const blocks = await storedBlocks(handle, fail);
    return blocks && (await readBlocks(handle, blocks, objectReader(maxBytes, fail, open), fail));
  } finally {
    await handle.close();
  }
}

type Block = { readonly position: number; readonly length: number };

/** Where each stored block's bytes are, from the block headers alone; null at the first compressed block. */
async function storedBlocks(source: Source, fail: Fail): Promise<Block[] | null> {
  const head = Buffer.alloc(5);
  await readExactly(source, 0, head, 0, 2, fail);
  // CM 8 (deflate), no preset dictionary, header checksum (RFC 1950 §2.2).
  if ((head[0]! & 0x0f) !== 8 || (head[1]! & 0x20) !== 0 || (head[0]! * 256 + head[1]!) % 31 !== 0) return null;
  const blocks: Block[] = [];
  for (let position = 2, final = false; !final; ) {
    await readExactly(source, position, head, 0, 5, fail);
    final = (head[0]! & 1) === 1;
    if (((head[0]! >> 1) & 3) !== 0) return null;
    const length = head.readUInt16LE(1);
    if ((length ^ head.readUInt16LE(3)) !== 0xffff) throw fail('is not a valid zlib stream (a stored block\'s length check fails)');
    blocks.push({ position: position + 5, length });
    position += 5 + length;
  }
  return blocks;
}

/** Reads the blocks' bytes a window at a time into `object`; its SHA-1. */
async function readBlocks(handle: FileHandle, blocks: readonly Block[], object: ObjectReader, fail: Fail): Promise<string> {
  const window = Buffer.allocUnsafe(WINDOW_BYTES);
  let filled = 0;
  for (const { position, length } of blocks) {
    for (let done = 0; done < length; ) {
      const n = Math.min(length - done, window.length - filled);
      await readExactly(handle, position + done, window, filled, n, fail);
      done += n;
      filled += n;
      if (filled < window.length) continue;
      object.take(window);
      filled = 0;
    }
  }
  object.take(window.subarray(0, filled));
  return object.finish();
}

type ObjectReader = { take(bytes: Uint8Array): void; finish(): string };

/** The `<type> <size>\0` header, then the content into `open`'s sink, all hashed; checks the content's length. */
function objectReader(maxBytes: number | undefined, fail: Fail, open: OpenContent): ObjectReader {
  const hash = createHash('sha1');
  let pending = Buffer.alloc(0);
  let content: { sink: ContentSink; size: number; filled: number } | undefined;
  const deliver = (bytes: Uint8Array) => {
    if (bytes.length === 0) return;
    if (content!.filled + bytes.length > content!.size) throw fail('is longer than its header says');
    content!.sink(bytes);
    content!.filled += bytes.length;
  };
  return {
    take(bytes) {
      hash.update(bytes);
      if (content) return deliver(bytes);
      const start = pending.length ? Buffer.concat([pending, bytes]) : bytes;
      const header = parseObjectHeader(start, maxBytes, fail);
      if (!header) {
        pending = Buffer.from(start);
        return;
      }
      content = { sink: open(header.type, header.size), size: header.size, filled: 0 };
      deliver(start.subarray(header.headerBytes));
    },
    finish() {
      if (!content) throw fail('is empty or has no header');
      if (content.filled !== content.size) throw fail(`is truncated (${content.filled} of ${content.size} bytes)`);
      return hash.digest('hex');
    },
  };
}
