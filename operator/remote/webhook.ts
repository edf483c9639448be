/**
 * An HTTP endpoint (node:http) for push webhooks from Gitea, GitHub and
 * GitLab. `onPush` triggers another observe/decide/act, which reads the
 * repositories itself; the event's repository, ref and old and new values
 * only tell a mirror what to ask its server (operator/remote/remote-link.ts).
 *
 * Order of checks, each answered without reading further than needed:
 * 404 wrong path · 405 not POST · 413 declared length too large · 401 no
 * signature/token · 415 not JSON · 413 body too large (reading stops) ·
 * 403 wrong signature/token · 400 malformed JSON or not a push event ·
 * 200 ping (no trigger) · 204 accepted.
 * Refusals are logged with their reason; the secret, signatures and tokens never are.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkCredentials, credentialPresent, detectProvider, parseWebhookPayload, type PushEvent, type WebhookProvider } from './webhook-verify.js';
import type { Log } from '../contracts.js';
import { SILENT } from '../runtime/silent-log.js';

export type { PushEvent, WebhookProvider } from './webhook-verify.js';

export type WebhookServerOptions = {
  host?: string;
  /** 0 = any free port. */
  port?: number;
  path?: string;
  secret: string;
  maxBodyBytes?: number;
  /** A trigger only. May return a promise; rejections are logged, not awaited. */
  onPush: (event: PushEvent) => void | Promise<void>;
  log?: Log;
};

export type WebhookServer = { readonly port: number; readonly url: string; close(): Promise<void> };

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

type Settings = { readonly hookPath: string; readonly maxBodyBytes: number; readonly secret: string; readonly log: Log; readonly onPush: WebhookServerOptions['onPush'] };

/** The answer to one request; `closeAfter` drops the connection (the body was not, or not fully, read). */
type Reply = { readonly status: number; readonly reason: string; readonly extra?: Record<string, string>; readonly closeAfter?: boolean };

class Refusal {
  constructor(readonly status: number, readonly reason: string) {}
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const host = options.host ?? '127.0.0.1';
  if (typeof options.secret !== 'string' || options.secret.length === 0) throw new Error('a webhook secret is required');
  const settings: Settings = {
    hookPath: options.path ?? '/hooks',
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    secret: options.secret,
    log: options.log ?? SILENT,
    onPush: options.onPush,
  };
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    void answer(req, settings).then((reply) => send(req, res, settings.log, reply));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => (server.off('error', reject), resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${port}${settings.hookPath}`;
  settings.log.info('webhook endpoint listening', { url });
  return {
    port,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Every check in the documented order; never throws. */
async function answer(req: http.IncomingMessage, s: Settings): Promise<Reply> {
  try {
    const screened = screen(req, s);
    if ('status' in screened) return screened;
    const { provider } = screened;
    const body = await readBody(req, s.maxBodyBytes);
    const check = checkCredentials(provider, req.headers, body, s.secret);
    if (!check.ok) return { status: check.status, reason: `${provider}: ${check.reason}` };
    return dispatch(provider, parseWebhookPayload(provider, req.headers, body), s);
  } catch (e) {
    if (e instanceof Refusal) return { status: e.status, reason: e.reason, closeAfter: e.status === 413 || e.status === 404 };
    return { status: 500, reason: `internal error: ${(e as Error)?.message ?? String(e)}` };
  }
}

/** The checks that need only the request line and headers: a refusal (the body is never read), or the provider. */
function screen(req: http.IncomingMessage, s: Settings): Reply | { provider: WebhookProvider } {
  const refuse = (status: number, reason: string, extra: Record<string, string> = {}): Reply => ({ status, reason, extra, closeAfter: true });
  if (safePath(req.url) !== s.hookPath) return refuse(404, 'unknown path');
  if (req.method !== 'POST') return refuse(405, `method ${req.method} not allowed`, { allow: 'POST' });
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > s.maxBodyBytes) return refuse(413, `declared body of ${declared} bytes is larger than ${s.maxBodyBytes}`);
  const provider = detectProvider(req.headers);
  if (!provider) return refuse(401, 'no Gitea, GitHub or GitLab signature or token');
  if (!credentialPresent(provider, req.headers)) {
    const missing = checkCredentials(provider, req.headers, Buffer.alloc(0), s.secret);
    return refuse(401, `${provider}: ${missing.ok ? 'missing signature or token' : missing.reason}`);
  }
  const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json') return refuse(415, `${provider}: content type ${JSON.stringify(contentType)} is not application/json (configure the webhook to send JSON)`);
  // The GitLab token is known before the body: refuse without reading it.
  if (provider === 'gitlab') {
    const early = checkCredentials(provider, req.headers, Buffer.alloc(0), s.secret);
    if (!early.ok) return refuse(early.status, `${provider}: ${early.reason}`);
  }
  return { provider };
}

/** A verified payload: a ping is answered, a push triggers `onPush` (not awaited; its failures are logged). */
function dispatch(provider: WebhookProvider, parsed: ReturnType<typeof parseWebhookPayload>, s: Settings): Reply {
  switch (parsed.kind) {
    case 'ping':
      return { status: 200, reason: `${provider}: ping` };
    case 'invalid':
      return { status: 400, reason: `${provider}: ${parsed.reason}` };
    case 'push': {
      const { event } = parsed;
      const failed = (e: unknown) => s.log.error('webhook onPush failed', { provider, repository: event.repository, ref: event.ref, error: String((e as Error)?.message ?? e) });
      try {
        const result = s.onPush(event);
        if (result && typeof (result as Promise<void>).catch === 'function') (result as Promise<void>).catch(failed);
      } catch (e) {
        failed(e);
        return { status: 500, reason: `${provider}: push event could not be handled` };
      }
      s.log.info('webhook push', { provider, repository: event.repository, ref: event.ref, after: event.after });
      return { status: 204, reason: `${provider}: push ${event.repository} ${event.ref}` };
    }
    default: {
      const never: never = parsed;
      return never;
    }
  }
}

function send(req: http.IncomingMessage, res: http.ServerResponse, log: Log, reply: Reply): void {
  const { status, reason, extra = {}, closeAfter = false } = reply;
  const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
  log[level](status >= 400 ? `webhook refused: ${reason}` : `webhook: ${reason}`, { status, remote: req.socket.remoteAddress, method: req.method, path: safePath(req.url) });
  if (res.headersSent) return;
  const body = status === 204 ? '' : `${JSON.stringify({ status, message: reason })}\n`;
  res.writeHead(status, { ...(body ? { 'content-type': 'application/json' } : {}), ...(closeAfter ? { connection: 'close' } : {}), ...extra });
  res.end(body);
  if (closeAfter) res.once('finish', () => req.destroy());
}

/** The body, refused (413) as soon as it grows past `maxBodyBytes`: reading stops there. */
function readBody(req: http.IncomingMessage, maxBodyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        req.off('data', onData);
        req.pause();
        reject(new Refusal(413, `body larger than ${maxBodyBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', (e) => reject(new Refusal(400, `request body could not be read (${(e as NodeJS.ErrnoException).code ?? e.message})`)));
  });
}

/** The path of a request target, without the query (which may carry anything). */
function safePath(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://x').pathname;
  } catch {
    return '(invalid)';
  }
}
