/**
 * An HTTP endpoint (node:http) for push webhooks from Gitea, GitHub and
 * GitLab. A notification carries no data for reconcile: `onPush` is only a
 * trigger for another observe/decide/act, which reads the repositories itself.
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
import { checkCredentials, credentialPresent, detectProvider, parseWebhookPayload, type PushEvent } from './webhook-verify.js';
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

class Refusal {
  constructor(readonly status: number, readonly reason: string) {}
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const host = options.host ?? '127.0.0.1';
  const hookPath = options.path ?? '/hooks';
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const log = options.log ?? SILENT;
  if (typeof options.secret !== 'string' || options.secret.length === 0) throw new Error('a webhook secret is required');
  const secret = options.secret;

  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    void handle(req, res);
  });

  function reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, reason: string, extra: Record<string, string> = {}, closeAfter = false): void {
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
    log[level](status >= 400 ? `webhook refused: ${reason}` : `webhook: ${reason}`, { status, remote: req.socket.remoteAddress, method: req.method, path: safePath(req.url) });
    if (res.headersSent) return;
    const body = status === 204 ? '' : `${JSON.stringify({ status, message: reason })}\n`;
    res.writeHead(status, { ...(body ? { 'content-type': 'application/json' } : {}), ...(closeAfter ? { connection: 'close' } : {}), ...extra });
    res.end(body);
    if (closeAfter) res.once('finish', () => req.destroy());
  }

  function readBody(req: http.IncomingMessage): Promise<Buffer> {
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

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const pathname = safePath(req.url);
      if (pathname !== hookPath) throw new Refusal(404, 'unknown path');
      if (req.method !== 'POST') return reply(req, res, 405, `method ${req.method} not allowed`, { allow: 'POST' }, true);
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > maxBodyBytes) return reply(req, res, 413, `declared body of ${declared} bytes is larger than ${maxBodyBytes}`, {}, true);
      const provider = detectProvider(req.headers);
      if (!provider) return reply(req, res, 401, 'no Gitea, GitHub or GitLab signature or token', {}, true);
      if (!credentialPresent(provider, req.headers)) {
        const missing = checkCredentials(provider, req.headers, Buffer.alloc(0), secret);
        return reply(req, res, 401, `${provider}: ${missing.ok ? 'missing signature or token' : missing.reason}`, {}, true);
      }
      const contentType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (contentType !== 'application/json') return reply(req, res, 415, `${provider}: content type ${JSON.stringify(contentType)} is not application/json (configure the webhook to send JSON)`, {}, true);
      // The GitLab token is known before the body: refuse without reading it.
      if (provider === 'gitlab') {
        const early = checkCredentials(provider, req.headers, Buffer.alloc(0), secret);
        if (!early.ok) return reply(req, res, early.status, `${provider}: ${early.reason}`, {}, true);
      }
      const body = await readBody(req);
      const check = checkCredentials(provider, req.headers, body, secret);
      if (!check.ok) return reply(req, res, check.status, `${provider}: ${check.reason}`);
      const parsed = parseWebhookPayload(provider, req.headers, body);
      switch (parsed.kind) {
        case 'ping':
          return reply(req, res, 200, `${provider}: ping`);
        case 'invalid':
          return reply(req, res, 400, `${provider}: ${parsed.reason}`);
        case 'push': {
          const { event } = parsed;
          try {
            const result = options.onPush(event);
            if (result && typeof (result as Promise<void>).catch === 'function') {
              (result as Promise<void>).catch((e: unknown) => log.error('webhook onPush failed', { provider, repository: event.repository, ref: event.ref, error: String((e as Error)?.message ?? e) }));
            }
          } catch (e) {
            log.error('webhook onPush failed', { provider, repository: event.repository, ref: event.ref, error: String((e as Error)?.message ?? e) });
            return reply(req, res, 500, `${provider}: push event could not be handled`);
          }
          log.info('webhook push', { provider, repository: event.repository, ref: event.ref, after: event.after });
          return reply(req, res, 204, `${provider}: push ${event.repository} ${event.ref}`);
        }
        default: {
          const never: never = parsed;
          return never;
        }
      }
    } catch (e) {
      if (e instanceof Refusal) return reply(req, res, e.status, e.reason, {}, e.status === 413 || e.status === 404);
      return reply(req, res, 500, `internal error: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => (server.off('error', reject), resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  log.info('webhook endpoint listening', { url: `http://${shownHost}:${port}${hookPath}` });

  return {
    port,
    url: `http://${shownHost}:${port}${hookPath}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The path of a request target, without the query (which may carry anything). */
function safePath(url: string | undefined): string {
  try {
    return new URL(url ?? '/', 'http://x').pathname;
  } catch {
    return '(invalid)';
  }
}
