/**
 * `fedgit serve`: the report, live. A small read-only HTTP server (GET only, loopback by default)
 * that rebuilds the page whenever a watched ref moves — the same RefWatcher and ReconcileLoop the
 * participants use, polling for repositories on a server — and tells open pages by server-sent
 * events, which then fetch the page again.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { finished } from 'node:stream/promises';
import { loadPlan, type Where } from '../commands/locate.js';
import { isRemoteLocation } from '../store/open-repository.js';
import { Repository } from '../git/repository.js';
import { DEFAULT_POLL_MS, RefWatcher, warnOnceOfWatchFailure } from '../runtime/ref-watcher.js';
import { ReconcileLoop } from '../runtime/reconcile-loop.js';
import type { Logger } from '../runtime/logging.js';
import type { Registries } from '../runtime/registries.js';
import { escapeHtml } from './html.js';
import type { AuditSummary } from './model.js';
import type { ExperimentView } from './experiment-view.js';
import { readReportModel, renderReportPage } from './build-report.js';
import { reportVersion } from './render.js';

export type ServeOptions = {
  readonly where: Where;
  readonly registries: Registries;
  /** A fixed plan; default: the plan repository's head, followed when a new plan is committed. */
  readonly planSpec?: string;
  readonly host: string;
  readonly port: number;
  readonly experiment?: ExperimentView | null;
  /** Safety-net poll of local refs, and the poll of repositories on a server. */
  readonly pollMs?: number;
  readonly log: Logger;
};

export type ReportServer = { readonly url: string; close(): Promise<void> };

const HEARTBEAT_MS = 15_000;
const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

const isLoopback = (host: string) => host === '127.0.0.1' || host === '::1' || host === 'localhost';

export async function startReportServer(o: ServeOptions): Promise<ReportServer> {
  const clients = new Set<http.ServerResponse>();
  const live = liveReport(o, (version) => {
    for (const res of clients) res.write(`event: update\ndata: ${version}\n\n`);
  });
  const server = http.createServer((req, res) => answer(req, res, { host: o.host, live, clients }));
  const heartbeat = setInterval(() => {
    for (const res of clients) res.write(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  await listen(server, o.port, o.host);
  const where = o.where.locate([]);
  const poll = [where.plan, where.global].some(isRemoteLocation) ? setInterval(() => live.loop.trigger(), o.pollMs ?? 5_000) : undefined;
  live.loop.trigger();
  await live.loop.idle();

  return {
    url: urlOf(server),
    async close() {
      clearInterval(heartbeat);
      clearInterval(poll);
      await live.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...clients].map((res) => (res.end(), finished(res).catch(() => undefined))));
      clients.clear();
      // Idle keep-alive connections and half-sent requests would otherwise hold close() until their peers hang up.
      server.closeAllConnections();
      await closed;
    },
  };
}

type LiveReport = {
  /** The newest page and its version; null until the first plan has been read. */
  page(): { readonly html: string; readonly version: string } | null;
  /** Why there is no page yet. */
  problem(): string;
  readonly loop: ReconcileLoop;
  /** Stops the loop, then the watcher. */
  stop(): Promise<void>;
};

/**
 * The page, rebuilt by a ReconcileLoop whenever a watched ref moves; calls `onNewVersion` when
 * what the page shows has changed. Watches the plan, global and edge repositories it can read
 * locally, the plan repository alone while no plan can be loaded.
 */
function liveReport(o: ServeOptions, onNewVersion: (version: string) => void): LiveReport {
  const auditCache = new Map<string, AuditSummary>();
  let page: { html: string; version: string } | null = null;
  let problem = 'reading the repositories';
  let watcher: RefWatcher | undefined;
  let watched = '';
  const onWatchFailed = warnOnceOfWatchFailure(o.log, o.pollMs ?? DEFAULT_POLL_MS);

  const rewatch = async (locations: readonly string[]) => {
    const gitdirs: string[] = [];
    for (const l of locations) if (!isRemoteLocation(l) && (await Repository.isRepository(l))) gitdirs.push(l);
    if (gitdirs.join('\n') === watched) return;
    watched = gitdirs.join('\n');
    await watcher?.stop();
    watcher = new RefWatcher({ gitdirs, onChange: () => loop.trigger(), onWatchFailed, ...(o.pollMs ? { pollMs: o.pollMs } : {}) });
    await watcher.start();
    loop.trigger();
  };

  const rebuild = async () => {
    let plan;
    try {
      plan = await loadPlan(o.where, o.registries, o.planSpec);
    } catch (e) {
      problem = (e as Error).message;
      await rewatch([o.where.locate([]).plan]);
      return;
    }
    const edges = plan.plan.edges.map((e) => e.name);
    const locations = o.where.locate(edges);
    const model = await readReportModel(o.where, o.registries, plan, { auditCache, experiment: o.experiment ?? null });
    const version = reportVersion(model);
    if (page?.version !== version) {
      page = { html: await renderReportPage(model, { live: true }), version };
      onNewVersion(version);
    }
    await rewatch([locations.plan, locations.global, ...Object.values(locations.edges)]);
  };
  const loop = new ReconcileLoop(rebuild, o.log);

  return {
    page: () => page,
    problem: () => problem,
    loop,
    async stop() {
      await loop.stop();
      await watcher?.stop();
    },
  };
}

type Served = { readonly host: string; readonly live: LiveReport; readonly clients: Set<http.ServerResponse> };

/** One request: GET or HEAD of the page or the event stream, from a loopback name when listening on loopback. */
function answer(req: http.IncomingMessage, res: http.ServerResponse, served: Served): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  // A page on another site must not read this one through a DNS name pointed at 127.0.0.1.
  const hostname = (req.headers.host ?? '').replace(/:\d+$/, '');
  if (isLoopback(served.host) && !LOOPBACK_NAMES.has(hostname)) {
    res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' }).end('forbidden host\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('read-only\n');
    return;
  }
  const pathname = (req.url ?? '/').split('?', 1)[0];
  if (pathname === '/' || pathname === '/index.html') return sendPage(req, res, served.live);
  if (pathname === '/events') return openEventStream(req, res, served);
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
}

/** The page, or while there is none a page that says why and reloads itself. */
function sendPage(req: http.IncomingMessage, res: http.ServerResponse, live: LiveReport): void {
  const page = live.page();
  if (!page) {
    res.writeHead(503, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Retry-After': '2' });
    res.end(`<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>fedgit serve</title><p>fedgit serve: no report yet (${escapeHtml(live.problem(), 500)}); this page reloads.</p>`);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : page.html);
}

/** Server-sent events: the current version at once, then one event per new version, until the client goes. */
function openEventStream(req: http.IncomingMessage, res: http.ServerResponse, served: Served): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
  if (req.method === 'HEAD') return void res.end();
  res.write(`retry: 1000\n\n`);
  const page = served.live.page();
  if (page) res.write(`event: update\ndata: ${page.version}\n\n`);
  served.clients.add(res);
  // The response's close, not the request's: a request without a body may close as soon as it is read.
  res.on('close', () => served.clients.delete(res));
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => (server.off('error', reject), resolve()));
  });
}

function urlOf(server: http.Server): string {
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shownHost}:${address.port}/`;
}
