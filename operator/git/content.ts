/**
 * A file's bytes as consecutive pieces — a checkpoint's header, then views on its tensors — so
 * that it can be hashed and written without first being copied into one buffer of its size; and
 * read the same way, a window at a time, by a sink.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

export type Pieces = readonly Uint8Array[];

/** Bytes handed to a writer are a buffer or pieces; pieces either way. */
export const piecesOf = (content: Uint8Array | Pieces): Pieces => (content instanceof Uint8Array ? [content] : content);

export const byteLength = (pieces: Pieces): number => pieces.reduce((n, p) => n + p.length, 0);

export function digestHex(algorithm: 'sha1' | 'sha256', pieces: Pieces): string {
  const hash = createHash(algorithm);
  for (const piece of pieces) hash.update(piece);
  return hash.digest('hex');
}

const WRITE_BYTES = 1024 * 1024;

/** The pieces cut into slices of at most `max` bytes (views, no copy). */
export function* slices(pieces: Iterable<Uint8Array>, max: number): Generator<Uint8Array> {
  for (const piece of pieces) {
    for (let at = 0; at < piece.length; at += max) yield piece.subarray(at, at + max);
  }
}

/** Writes `parts` in order at the file's position, about 1 MiB per system call. */
export async function writeParts(handle: FileHandle, parts: Iterable<Uint8Array>): Promise<void> {
  let batch: Uint8Array[] = [];
  let bytes = 0;
  for (const part of slices(parts, WRITE_BYTES)) {
    batch.push(part);
    bytes += part.length;
    if (bytes < WRITE_BYTES) continue;
    await writeAll(handle, batch, bytes);
    batch = [];
    bytes = 0;
  }
  await writeAll(handle, batch, bytes);
}

export async function writeAll(handle: FileHandle, chunks: Uint8Array[], bytes: number): Promise<void> {
  if (bytes === 0) return;
  const { bytesWritten } = await handle.writev(chunks);
  // writev(2) on a regular file writes everything unless the disk is full or a size limit is reached: then it is short, an error here, never half an object.
  if (bytesWritten !== bytes) throw new Error(`short write (${bytesWritten} of ${bytes} bytes)`);
}

/** Takes a file's content in order, a window at a time; a window is reused once the call returns. */
export type ContentSink = (bytes: Uint8Array) => void;

/** A sink that copies the content into one buffer of `size` bytes, returned by `content()`. */
export function collect(size: number): { sink: ContentSink; content: () => Buffer } {
  const content = Buffer.allocUnsafe(size);
  let filled = 0;
  return {
    sink: (bytes) => {
      content.set(bytes, filled);
      filled += bytes.length;
    },
    content: () => content,
  };
}
