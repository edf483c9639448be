/**
 * An isomorphic-git `HttpClient` over node:http/https.
 *
 * Node 20's global agent closes a socket after 5 s without traffic, which
 * aborts big clones and pushes while the server is packing or indexing; this
 * client uses its own keep-alive agents and bounds each request by a connect
 * timeout, an idle timeout of minutes (no byte either way: git servers send
 * keep-alives while they pack or index, and nginx itself gives up on a silent
 * backend after 60 s) and an overall timeout (from the request until its
 * response body has been read). The idle timeout also frees a pooled socket
 * whose response nobody reads, so a few such responses cannot leave every
 * later request waiting for a socket until the overall timeout.
 *
 * Credentials travel only in the Authorization header. Error messages and log
 * lines name the URL without user information and never carry a header.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { ConfigInvalid, FedgitError } from '../errors.js';
import { SILENT } from '../runtime/silent-log.js';
import type { Log } from '../contracts.js';

export type HttpAuth = { readonly username: string; readonly token: string };

export type HttpClientOptions = {
  /** Sent as basic auth with every request that has no Authorization header of its own. */
  auth?: HttpAuth;
  /** From sending the request until the response body is fully read. Default 10 minutes. */
  timeoutMs?: number;
  /** To establish the TCP (and TLS) connection. Default 10 s. */
  connectTimeoutMs?: number;
  /** No byte received or sent on the connection for this long ends the request. Default 2 minutes. */
  idleTimeoutMs?: number;
  /** Redirects followed (301/302/303/307/308). Default 5. */
  maxRedirects?: number;
  /** Extra options for the https agent (e.g. `ca` for a private certificate authority). */
  tls?: Pick<https.AgentOptions, 'ca' | 'rejectUnauthorized' | 'servername'>;
  log?: Log;
};

export type FedgitHttpClient = HttpClient & {
  /** Closes idle keep-alive connections; the client stays usable. */
  close(): void;
};

export class HttpRequestFailed extends FedgitError {
  constructor(method: string, url: string, reason: string, options?: { cause?: unknown }) {
    super('HTTP_REQUEST_FAILED', `${method} ${url}: ${reason}`, { method, url, reason }, options);
  }
}

export const DEFAULT_TIMEOUT_MS = 10 * 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 2 * 60_000;

/** `Basic base64(username:token)`. Keep the result out of logs and messages. */
export function basicAuthorization(auth: HttpAuth): string {
  if (auth.username.includes(':')) throw new ConfigInvalid('auth.username: a user name for basic auth cannot contain ":"', { field: 'auth.username' });
  return `Basic ${Buffer.from(`${auth.username}:${auth.token}`, 'utf8').toString('base64')}`;
}

/** Headers to pass as isomorphic-git's `headers` option. */
export function authHeaders(auth: HttpAuth | undefined): Record<string, string> {
  return auth ? { authorization: basicAuthorization(auth) } : {};
}

/** The URL with user information removed: the only form of a URL that reaches messages, logs and git config. */
export function displayUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

async function collect(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<Buffer | undefined> {
  if (!body) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function headerRecord(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

type Attempt = { url: URL; method: string; headers: Record<string, string>; body: Buffer | undefined };

/** A client's settings and connection pools. */
type Client = {
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxRedirects: number;
  readonly auth: HttpAuth | undefined;
  readonly log: Log;
  readonly agents: { readonly http: http.Agent; readonly https: https.Agent };
};

const REDIRECTS = [301, 302, 303, 307, 308];

export function createHttpClient(options: HttpClientOptions = {}): FedgitHttpClient {
  const c: Client = {
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxRedirects: options.maxRedirects ?? 5,
    auth: options.auth,
    log: options.log ?? SILENT,
    // No agent `timeout`: a socket in use is bounded per request (see bound); idle pooled sockets are unref'd by node.
    agents: {
      http: new http.Agent({ keepAlive: true, keepAliveMsecs: 15_000, maxSockets: 8 }),
      https: new https.Agent({ keepAlive: true, keepAliveMsecs: 15_000, maxSockets: 8, ...options.tls }),
    },
  };
  return {
    request: (r) => request(c, r),
    close() {
      c.agents.http.destroy();
      c.agents.https.destroy();
    },
  };
}

/** One isomorphic-git request: follows redirects, and returns once the final response's headers are in. */
async function request(c: Client, r: GitHttpRequest): Promise<GitHttpResponse> {
  const started = Date.now();
  const deadline = started + c.timeoutMs;
  let attempt = await firstAttempt(c, r);
  for (let redirects = 0; ; redirects++) {
    const res = await send(c, attempt, deadline, r.signal, true);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (REDIRECTS.includes(status) && location) {
      res.resume();
      if (redirects >= c.maxRedirects) throw new HttpRequestFailed(attempt.method, displayUrl(attempt.url), `more than ${c.maxRedirects} redirects`);
      attempt = redirected(c, attempt, status, location);
      continue;
    }
    c.log.debug('http response', { method: attempt.method, url: displayUrl(attempt.url), status, headersMs: Date.now() - started });
    const body = decoded(res)[Symbol.asyncIterator]() as AsyncIterableIterator<Uint8Array>;
    return { url: attempt.url.toString(), method: attempt.method, headers: headerRecord(res.headers), body, statusCode: status, statusMessage: res.statusMessage ?? '' };
  }
}

/** The request as it is first sent: credentials moved from the URL (or the client) into the Authorization header. */
async function firstAttempt(c: Client, r: GitHttpRequest): Promise<Attempt> {
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw new HttpRequestFailed(r.method ?? 'GET', '(invalid URL)', 'invalid URL');
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
  if (url.username || url.password) {
    if (!headers.authorization) headers.authorization = basicAuthorization({ username: decodeURIComponent(url.username), token: decodeURIComponent(url.password) });
    url.username = '';
    url.password = '';
  }
  if (!headers.authorization && c.auth) headers.authorization = basicAuthorization(c.auth);
  delete headers['content-length'];
  return { url, method: (r.method ?? 'GET').toUpperCase(), headers, body: await collect(r.body) };
}

/** The next attempt after a redirect: never https → http, credentials only to the same origin, 303 (and a POST's 301/302) as GET. */
function redirected(c: Client, attempt: Attempt, status: number, location: string): Attempt {
  const next = new URL(location, attempt.url);
  if (next.protocol === 'http:' && attempt.url.protocol === 'https:') throw new HttpRequestFailed(attempt.method, displayUrl(attempt.url), 'refusing a redirect from https to http');
  const headers = { ...attempt.headers };
  if (next.origin !== attempt.url.origin) delete headers.authorization;
  const toGet = status === 303 || ((status === 301 || status === 302) && attempt.method === 'POST');
  if (toGet) delete headers['content-type'];
  c.log.debug('following redirect', { status, from: displayUrl(attempt.url), to: displayUrl(next) });
  next.username = next.password = '';
  return { url: next, method: toGet ? 'GET' : attempt.method, headers, body: toGet ? undefined : attempt.body };
}

/** One HTTP exchange; resolves when the response headers arrive. The deadline keeps running while the body is read. */
function send(c: Client, a: Attempt, deadline: number, signal: AbortSignal | undefined, retryStale: boolean): Promise<http.IncomingMessage> {
  const shown = displayUrl(a.url);
  const fail = (reason: string, cause?: unknown) => new HttpRequestFailed(a.method, shown, reason, cause === undefined ? undefined : { cause });
  if (signal?.aborted) return Promise.reject(fail('aborted'));
  return new Promise((resolve, reject) => {
    const secure = a.url.protocol === 'https:';
    const req = (secure ? https : http).request(a.url, {
      method: a.method,
      headers: { ...a.headers, ...(a.body ? { 'content-length': String(a.body.length) } : {}) },
      agent: secure ? c.agents.https : c.agents.http,
    });
    let settled = false;
    const limits = bound(req, { deadline, signal, connectTimeoutMs: c.connectTimeoutMs, idleTimeoutMs: c.idleTimeoutMs, secure, fail, timedOut: `timed out after ${c.timeoutMs} ms` });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      limits.release();
      if (err instanceof HttpRequestFailed) return reject(err);
      // A pooled connection the server had already closed: safe to send again once, the body is in memory.
      if (retryStale && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        c.log.debug('retrying on a fresh connection', { method: a.method, url: shown });
        return resolve(send(c, a, deadline, signal, false));
      }
      reject(fail(err.code ? `${err.code}${err.message && !err.message.includes(err.code) ? ` (${err.message})` : ''}` : err.message, err));
    });
    req.on('response', (res) => {
      settled = true;
      limits.follow(res);
      resolve(res);
    });
    req.end(a.body);
  });
}

type Bounds = {
  deadline: number; signal: AbortSignal | undefined; connectTimeoutMs: number; idleTimeoutMs: number; secure: boolean;
  fail: (reason: string) => HttpRequestFailed; timedOut: string;
};

/**
 * The overall deadline, the connect and idle timeouts and the abort signal of one request: each destroys the
 * request (and its response, once there is one) with an HttpRequestFailed. Released when the
 * response body ends or the request fails.
 */
function bound(req: http.ClientRequest, b: Bounds): { follow(res: http.IncomingMessage): void; release(): void } {
  let response: http.IncomingMessage | undefined;
  let connecting: NodeJS.Timeout | undefined;
  const release = () => {
    clearTimeout(overall);
    clearTimeout(connecting);
    b.signal?.removeEventListener('abort', onAbort);
  };
  const abort = (err: HttpRequestFailed) => {
    release();
    if (response) response.destroy(err);
    req.destroy(err);
  };
  // Unref'd: an open socket keeps the process alive anyway, an abandoned response should not.
  const overall = setTimeout(() => abort(b.fail(b.timedOut)), Math.max(0, b.deadline - Date.now())).unref();
  const onAbort = () => abort(b.fail('aborted'));
  b.signal?.addEventListener('abort', onAbort, { once: true });
  // Node hands the socket back to the agent with the agent's timeout (none) once the response has ended.
  req.setTimeout(b.idleTimeoutMs, () => abort(b.fail(`no data for ${b.idleTimeoutMs} ms`)));
  req.on('socket', (socket) => {
    if (!socket.connecting && !(socket as { pending?: boolean }).pending) return;
    connecting = setTimeout(() => abort(b.fail(`could not connect within ${b.connectTimeoutMs} ms`)), b.connectTimeoutMs).unref();
    socket.once(b.secure ? 'secureConnect' : 'connect', () => clearTimeout(connecting));
  });
  return {
    follow(res) {
      response = res;
      res.once('end', release);
      res.once('close', release);
    },
    release,
  };
}

function decoded(res: http.IncomingMessage): NodeJS.ReadableStream {
  const encoding = String(res.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding !== 'gzip' && encoding !== 'deflate') return res;
  const inflate = encoding === 'gzip' ? zlib.createGunzip() : zlib.createInflate();
  res.on('error', (e) => inflate.destroy(e));
  return res.pipe(inflate);
}

/** The name operator/store/open-repository.ts looks for. */
export const makeHttpClient = createHttpClient;
