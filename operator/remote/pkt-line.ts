/**
 * git's pkt-lines (four hex digits of length, the length included, then the payload; `0000` is a
 * flush) and the bodies of the smart HTTP requests and answers fedgit reads and writes itself.
 */
import type { HttpClient } from 'isomorphic-git';

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

/**
 * POSTs a request to a repository's `service` and reads the answer whole; a status other than 200
 * is thrown as isomorphic-git's HTTP errors are (`data.statusCode`), so one explanation serves both.
 */
export async function postToService(http: HttpClient, url: string, service: 'git-upload-pack' | 'git-receive-pack', headers: Record<string, string>, pieces: readonly Buffer[]): Promise<Buffer> {
  const response = await http.request({
    url: `${url}/${service}`,
    method: 'POST',
    headers: { ...headers, 'content-type': `application/x-${service}-request`, accept: `application/x-${service}-result` },
    body: bodyOf(...pieces),
  });
  const answer = await readBody(response.body);
  if (response.statusCode !== 200) throw Object.assign(new Error(`HTTP ${response.statusCode} ${response.statusMessage}`), { data: { statusCode: response.statusCode } });
  return answer;
}
