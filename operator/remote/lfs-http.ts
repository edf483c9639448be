/**
 * One streaming HTTP exchange for Git LFS transfers: the request body is a stream (or a small
 * buffer) and the response is handed back unread, so a checkpoint of any size crosses the wire
 * without a whole-object buffer (isomorphic-git's `HttpClient` contract collects request bodies,
 * which is why LFS does not go through operator/remote/http-client.ts). Keep-alive agents, a
 * connect timeout and an idle timeout as there; no overall deadline, since a big object may take
 * long while bytes keep moving. Redirects are not followed (the batch API hands out final hrefs).
 * Messages name URLs without user information and never a header.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, HttpRequestFailed, displayUrl } from './http-client.js';

export type LfsRequest = {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** A stream with a known length (`contentLength`), or a small buffer. */
  readonly body?: Buffer | Readable;
  readonly contentLength?: number;
};

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 8 }), https: new https.Agent({ keepAlive: true, maxSockets: 8 }) };

/** Resolves with the response once its headers are in; the caller reads (or discards) its body. */
export function lfsExchange(r: LfsRequest, timeouts = { connectMs: DEFAULT_CONNECT_TIMEOUT_MS, idleMs: DEFAULT_IDLE_TIMEOUT_MS }): Promise<http.IncomingMessage> {
  const url = new URL(r.url);
  const shown = displayUrl(url);
  const fail = (reason: string, cause?: unknown) => new HttpRequestFailed(r.method, shown, reason, cause === undefined ? undefined : { cause });
  if (url.username || url.password) return Promise.reject(fail('an LFS href must not carry credentials in its URL'));
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(fail(`unsupported protocol ${url.protocol}`));
  const length = Buffer.isBuffer(r.body) ? r.body.length : r.contentLength;
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(url, {
      method: r.method,
      headers: { ...r.headers, ...(length !== undefined ? { 'content-length': String(length) } : {}) },
      agent: secure ? agents.https : agents.http,
    });
    const connecting = setTimeout(() => req.destroy(fail(`could not connect within ${timeouts.connectMs} ms`)), timeouts.connectMs).unref();
    req.on('socket', (s) => (s.connecting ? s.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(connecting)) : clearTimeout(connecting)));
    req.setTimeout(timeouts.idleMs, () => req.destroy(fail(`no data for ${timeouts.idleMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(connecting);
      reject(e instanceof HttpRequestFailed ? e : fail(e.code ?? e.message, e));
    });
    req.on('response', (res) => {
      res.setTimeout(timeouts.idleMs, () => res.destroy(fail(`no data for ${timeouts.idleMs} ms`)));
      resolve(res);
    });
    if (r.body instanceof Readable) pipeline(r.body, req).catch((e: Error) => req.destroy(e instanceof HttpRequestFailed ? e : fail(`sending the body: ${e.message}`, e)));
    else req.end(r.body);
  });
}

/** A response body of at most `maxBytes` (JSON answers and error messages), as text. */
export async function readSmallBody(res: http.IncomingMessage, maxBytes = 4 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      res.destroy();
      throw new HttpRequestFailed('GET', '(LFS response)', `response body over ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
