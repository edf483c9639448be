/**
 * One push over smart HTTP written by fedgit: a single receive-pack request carrying the command
 * (`<old> <new> <ref>`) and the pack, and the server's report-status read back (through
 * side-band-64k when the server offers it). Used for a push from a known value, whose
 * advertisement fedgit already has (operator/remote/replay-advertisement.ts).
 */
import type { HttpClient } from 'isomorphic-git';
import { FLUSH, pktLine, postToService, readPktLines } from './pkt-line.js';

export type ReceivePackCommand = { readonly ref: string; readonly expected: string; readonly next: string };
export type ReceivePackReport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const AGENT = 'agent=fedgit';


/** The capabilities to ask for, of those the server announced; undefined when it cannot report the outcome (no report-status). */
export function requestedCapabilities(announced: string): string | undefined {
  const offered = new Set(announced.split(' '));
  if (!offered.has('report-status')) return undefined;
  return ['report-status', ...(offered.has('side-band-64k') ? ['side-band-64k'] : []), AGENT].join(' ');
}

/** The request body: the command with the capabilities, a flush, then the pack. */
export function receivePackRequest(command: ReceivePackCommand, capabilities: string, pack: readonly Buffer[]): Buffer[] {
  return [pktLine(`${command.expected} ${command.next} ${command.ref}\0${capabilities}\n`), FLUSH, ...pack];
}

/** Sends the push and reads the server's report (HTTP errors as `postToService` throws them). */
export async function sendReceivePack(http: HttpClient, url: string, headers: Record<string, string>, body: readonly Buffer[]): Promise<ReceivePackReport & { readonly raw: Buffer }> {
  const raw = await postToService(http, url, 'git-receive-pack', headers, body);
  return { ...parseReport(raw, usesSideBand(body[0]!)), raw };
}

/** Whether the command line (the body's first piece) asked for side-band-64k. */
const usesSideBand = (commandLine: Buffer) => commandLine.toString('latin1').split('\0')[1]?.split(/[ \n]/).includes('side-band-64k') ?? false;

function pktLines(data: Buffer): Array<Buffer | null> {
  const lines = readPktLines(data);
  if (!lines) throw new Error('the server\'s answer to the push is not in pkt-lines');
  return lines;
}

/**
 * The outcome in a receive-pack answer, side-band or not: `unpack ok` and `ok <ref>` is success;
 * `unpack <why>`, `ng <ref> <why>` or a side-band error is a refusal with the server's words.
 */
export function parseReport(raw: Buffer, sideBand: boolean): ReceivePackReport {
  let report = raw;
  if (sideBand) {
    const data: Buffer[] = [];
    for (const line of pktLines(raw)) {
      if (line === null || line.length === 0) continue;
      if (line[0] === 3) return { ok: false, reason: line.subarray(1).toString('utf8').trim() || 'the server stopped the push' };
      if (line[0] === 1) data.push(line.subarray(1));
    }
    report = Buffer.concat(data);
  }
  const status = pktLines(report).filter((l): l is Buffer => l !== null).map((l) => l.toString('utf8').replace(/\n$/, ''));
  const unpack = status.find((l) => l.startsWith('unpack '));
  if (unpack !== 'unpack ok') return { ok: false, reason: unpack ? unpack.slice('unpack '.length) : 'the server sent no report of the push' };
  const refusal = status.find((l) => l.startsWith('ng '));
  if (refusal) return { ok: false, reason: refusal.split(' ').slice(2).join(' ') || 'rejected' };
  if (!status.some((l) => l.startsWith('ok '))) return { ok: false, reason: 'the server reported no ref as updated' };
  return { ok: true };
}
