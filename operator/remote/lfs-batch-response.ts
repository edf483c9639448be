/**
 * Pure parsing of a Git LFS batch response (docs/api/batch.md in git-lfs): every object asked
 * for must come back once, with either actions or an error; hrefs must be http(s) URLs and
 * header maps strings. What the server sent is never trusted beyond that.
 */
import type { LfsPointer } from '../lfs/pointer.js';
import { escapeUntrusted } from '../text/untrusted.js';

export type LfsAction = { readonly href: string; readonly header: Readonly<Record<string, string>> };
export type LfsBatchObject = {
  readonly oid: string;
  readonly size: number;
  readonly actions?: { readonly upload?: LfsAction; readonly verify?: LfsAction; readonly download?: LfsAction };
  readonly error?: { readonly code: number; readonly message: string };
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseAction(v: unknown, where: string, fail: (why: string) => Error): LfsAction {
  if (!isRecord(v) || typeof v.href !== 'string') throw fail(`${where}: no href`);
  let url: URL;
  try {
    url = new URL(v.href);
  } catch {
    throw fail(`${where}: href is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(`${where}: href is not http(s)`);
  const header = v.header ?? {};
  if (!isRecord(header) || !Object.values(header).every((h) => typeof h === 'string' && !/[\r\n]/.test(h))) throw fail(`${where}: header is not a map of strings`);
  return { href: v.href, header: header as Record<string, string> };
}

function parseObject(v: unknown, fail: (why: string) => Error): LfsBatchObject {
  if (!isRecord(v) || typeof v.oid !== 'string' || typeof v.size !== 'number') throw fail('an object has no oid or size');
  const where = `object ${escapeUntrusted(v.oid, 64)}`;
  if (isRecord(v.error)) return { oid: v.oid, size: v.size, error: { code: Number(v.error.code), message: escapeUntrusted(String(v.error.message ?? ''), 300) } };
  if (v.actions === undefined) return { oid: v.oid, size: v.size };
  if (!isRecord(v.actions)) throw fail(`${where}: actions is not an object`);
  const actions: Record<string, LfsAction> = {};
  for (const name of ['upload', 'verify', 'download'] as const) if (v.actions[name] !== undefined) actions[name] = parseAction(v.actions[name], `${where}.${name}`, fail);
  return { oid: v.oid, size: v.size, actions };
}

/** The response's objects in the order of `asked`; `fail` builds the error for a malformed answer. */
export function parseBatchResponse(text: string, asked: readonly LfsPointer[], fail: (why: string) => Error): LfsBatchObject[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw fail('the response is not JSON');
  }
  if (!isRecord(body) || !Array.isArray(body.objects)) throw fail('the response has no objects list');
  if (body.transfer !== undefined && body.transfer !== 'basic') throw fail(`the server chose transfer ${escapeUntrusted(String(body.transfer), 40)}, fedgit speaks only basic`);
  if (body.hash_algo !== undefined && body.hash_algo !== 'sha256') throw fail(`hash_algo ${escapeUntrusted(String(body.hash_algo), 40)} is not sha256`);
  const byOid = new Map(body.objects.map((o) => parseObject(o, fail)).map((o) => [o.oid, o]));
  return asked.map((p) => {
    const o = byOid.get(p.oid);
    if (!o) throw fail(`object ${p.oid} is missing from the response`);
    if (o.size !== p.size && !o.error) throw fail(`object ${p.oid} comes back with size ${o.size}, not ${p.size}`);
    return o;
  });
}
