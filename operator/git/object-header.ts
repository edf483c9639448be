/** The `<type> <size>\0` header that starts every loose object, read the same way by every reader. */
import type { ObjectType } from './objects.js';

const MAX_HEADER_BYTES = 64;

export type ObjectHeader = { readonly type: ObjectType; readonly size: number; readonly headerBytes: number };

/**
 * The header at the start of `bytes`, or null while its NUL has not arrived yet. A header that
 * is malformed, or announces more than `maxBytes`, fails before anything of that size is allocated.
 */
export function parseObjectHeader(bytes: Uint8Array, maxBytes: number | undefined, fail: (why: string) => Error): ObjectHeader | null {
  const nul = bytes.indexOf(0);
  if (nul < 0) {
    if (bytes.length > MAX_HEADER_BYTES) throw fail('has a bad header');
    return null;
  }
  const match = nul <= MAX_HEADER_BYTES ? /^(blob|tree|commit|tag) (\d+)$/.exec(Buffer.from(bytes.buffer, bytes.byteOffset, nul).toString('latin1')) : null;
  if (!match) throw fail('has a bad header');
  const size = Number(match[2]);
  if (maxBytes !== undefined && size > maxBytes) throw fail(`announces ${size} bytes, more than the ${maxBytes} allowed here`);
  return { type: match[1] as ObjectType, size, headerBytes: nul + 1 };
}
