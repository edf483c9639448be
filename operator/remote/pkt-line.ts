/**
 * git's pkt-lines (four hex digits of length, the length included, then the payload; `0000` is a
 * flush) and the bodies of the smart HTTP requests and answers fedgit reads and writes itself.
 */

export const FLUSH = Buffer.from('0000', 'latin1');

/** One pkt-line; a string payload is UTF-8. */
export function pktLine(payload: string | Buffer): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from((bytes.length + 4).toString(16).padStart(4, '0'), 'latin1'), bytes]);
}

/** The pkt-lines of `data`, a flush as null; undefined when `data` is not pkt-lines from end to end. */
export function readPktLines(data: Buffer): Array<Buffer | null> | undefined {
  const lines: Array<Buffer | null> = [];
  let at = 0;
  while (at < data.length) {
    const head = data.toString('latin1', at, at + 4);
    const length = parseInt(head, 16);
    if (!/^[0-9a-f]{4}$/.test(head) || (length > 0 && length < 4) || at + Math.max(length, 4) > data.length) return undefined;
    lines.push(length === 0 ? null : data.subarray(at + 4, at + length));
    at += length === 0 ? 4 : length;
  }
  return lines;
}

/** A request or answer body read whole. */
export async function readBody(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  if (body) for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** `pieces` as a request or answer body. */
export async function* bodyOf(...pieces: readonly Buffer[]): AsyncIterableIterator<Uint8Array> {
  for (const piece of pieces) yield new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength);
}
