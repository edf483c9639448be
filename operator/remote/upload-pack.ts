/**
 * One fetch over smart HTTP written by fedgit: a single upload-pack request (the wants, the haves,
 * `done`) and the pack read back from the answer (through side-band-64k when the server offers
 * it). Used after an advertisement fedgit already has (a listing, or one rendered from push events).
 */
import type { HttpClient } from 'isomorphic-git';
import { FLUSH, pktLine, postToService } from './pkt-line.js';

const AGENT = 'agent=fedgit';

/** What the server refused, in its words (an `ERR` line or an error on the side band). */
export class UploadPackRefused extends Error {}

/** The capabilities to ask for, of those the server announced: side-band-64k and ofs-delta when offered; never a thin pack. */
export function requestedFetchCapabilities(announced: string): string {
  const offered = new Set(announced.split(' '));
  return [...['side-band-64k', 'ofs-delta'].filter((c) => offered.has(c)), AGENT].join(' ');
}

export function uploadPackRequest(wants: readonly string[], haves: readonly string[], capabilities: string): Buffer {
  if (wants.length === 0) throw new Error('a fetch wants at least one object');
  for (const oid of [...wants, ...haves]) if (!/^[0-9a-f]{40}$/.test(oid)) throw new Error(`not an object id: ${oid}`);
  return Buffer.concat([
    ...wants.map((oid, i) => pktLine(`want ${oid}${i === 0 ? ` ${capabilities}` : ''}\n`)),
    FLUSH,
    ...haves.map((oid) => pktLine(`have ${oid}\n`)),
    pktLine('done\n'),
  ]);
}

/** Sends the request; the pack of the answer (HTTP errors as `postToService` throws them). */
export async function sendUploadPack(http: HttpClient, url: string, headers: Record<string, string>, body: Buffer, sideBand: boolean): Promise<Buffer> {
  return packOfAnswer(await postToService(http, url, 'git-upload-pack', headers, [body]), sideBand);
}

/**
 * The pack in an upload-pack answer: after the `ACK`/`NAK` lines, the side band's channel 1 (2 is
 * progress, 3 an error), or the rest of the answer without a side band.
 */
export function packOfAnswer(answer: Buffer, sideBand: boolean): Buffer {
  let at = 0;
  const data: Buffer[] = [];
  while (at < answer.length) {
    if (!sideBand && answer.toString('latin1', at, at + 4) === 'PACK') return answer.subarray(at);
    const head = answer.toString('latin1', at, at + 4);
    const length = parseInt(head, 16);
    if (!/^[0-9a-f]{4}$/.test(head) || (length > 0 && length < 4) || at + Math.max(length, 4) > answer.length) throw new Error('the server\'s answer to the fetch is not in pkt-lines');
    if (length === 0) {
      at += 4;
      continue;
    }
    const line = answer.subarray(at + 4, at + length);
    at += length;
    const text = line.toString('latin1');
    if (text.startsWith('ERR ')) throw new UploadPackRefused(line.subarray(4).toString('utf8').trim());
    if (/^(ACK|NAK)\b/.test(text)) continue;
    if (!sideBand) throw new Error('the server\'s answer to the fetch has an unexpected line before the pack');
    if (line[0] === 1) data.push(line.subarray(1));
    else if (line[0] === 3) throw new UploadPackRefused(line.subarray(1).toString('utf8').trim() || 'the server stopped the fetch');
    else if (line[0] !== 2) throw new Error(`the server's answer to the fetch uses side-band channel ${line[0]}`);
  }
  if (data.length === 0) throw new Error('the server\'s answer to the fetch holds no pack');
  return Buffer.concat(data);
}
