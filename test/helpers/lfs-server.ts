/**
 * A Git LFS server for tests, written here because Debian packages none and Gitea cannot be
 * installed on the test machines. It follows the batch API and the basic transfer adapter as
 * git-lfs documents them (docs/api/batch.md, docs/api/basic-transfers.md in
 * github.com/git-lfs/git-lfs) and is what `git lfs` itself talks to in the tests, so the real
 * client referees it too.
 *
 * It sits behind the test git server's nginx (test/helpers/git-server.ts), which authenticates
 * every request with the same users as git and passes the user and repository on in headers;
 * this server authorises (uploads only by the repository's writers → 403), answers
 * `POST <repo>.git/info/lfs/objects/batch`, streams `PUT`/`GET <repo>.git/info/lfs/objects/<oid>`
 * (an upload is stored only if it hashes to its oid and has the announced size, else 422) and
 * `POST <repo>.git/info/lfs/verify`. Like Gitea, it hands out each action with a `header` map
 * holding the credentials its href needs (`git lfs` sends none of its own to an href). Objects live in the served bare repository's `lfs/objects`,
 * the layout `git lfs` uses. No locking API (404, as the spec allows).
 *
 * It runs as a child process (this file is its main), so that tests may call native git
 * synchronously while git-lfs talks to it.
 */
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, createReadStream, existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

export const LFS_MEDIA_TYPE = 'application/vnd.git-lfs+json';
/** Headers nginx sets after authenticating (test/helpers/git-server.ts); a client cannot set them past nginx. */
export const USER_HEADER = 'x-fedgit-user';
export const REPO_HEADER = 'x-fedgit-repo';

/** What the server process is started with (as JSON). */
export type LfsServerConfig = {
  /** Folder of the bare repositories, `<repo>.git` each. */
  readonly projectRoot: string;
  /** repository → who may upload. */
  readonly writers: Readonly<Record<string, readonly string[]>>;
  /** Every answered request is appended here as a JSON line. */
  readonly logFile: string;
};

type LfsServerOptions = { gitdir(repo: string): string; writers(repo: string): readonly string[] | undefined };
export type LfsRequestLog = { user: string; method: string; path: string; status: number };
export type LfsServer = { readonly port: number; requests(): LfsRequestLog[]; close(): Promise<void> };

type Ctx = { req: http.IncomingMessage; res: http.ServerResponse; user: string; repo: string; rest: string; o: LfsServerOptions };

const objectFile = (gitdir: string, oid: string) => path.join(gitdir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid);
const OID = /^[0-9a-f]{64}$/;

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': LFS_MEDIA_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 1 << 20) throw new Error('request body too large');
  }
  return JSON.parse(text);
}

async function sizeOf(file: string): Promise<number | undefined> {
  return stat(file).then((s) => s.size, () => undefined);
}

type BatchObject = { oid: unknown; size: unknown };

async function batchObject(c: Ctx, operation: string, o: BatchObject, base: string): Promise<unknown> {
  if (typeof o.oid !== 'string' || !OID.test(o.oid) || !Number.isSafeInteger(o.size) || (o.size as number) < 0) {
    return { oid: String(o.oid), size: Number(o.size), error: { code: 422, message: 'invalid oid or size' } };
  }
  const { oid, size } = o as { oid: string; size: number };
  const stored = await sizeOf(objectFile(c.o.gitdir(c.repo), oid));
  const href = `${base}/objects/${oid}`;
  // As Gitea does: the action carries the credentials its href needs (here the request's own, which nginx checked).
  const header = c.req.headers.authorization ? { Authorization: c.req.headers.authorization } : {};
  if (operation === 'download') {
    if (stored === undefined) return { oid, size, error: { code: 404, message: 'Object does not exist' } };
    return { oid, size: stored, authenticated: true, actions: { download: { href, header, expires_in: 3600 } } };
  }
  if (stored === size) return { oid, size };
  return { oid, size, authenticated: true, actions: { upload: { href, header, expires_in: 3600 }, verify: { href: `${base}/verify`, header, expires_in: 3600 } } };
}

async function batch(c: Ctx): Promise<void> {
  if (!String(c.req.headers.accept ?? '').includes(LFS_MEDIA_TYPE)) return reply(c.res, 406, { message: `Accept must be ${LFS_MEDIA_TYPE}` });
  const body = (await readJson(c.req).catch(() => null)) as { operation?: unknown; objects?: unknown; transfers?: unknown } | null;
  if (!body || !Array.isArray(body.objects) || (body.operation !== 'upload' && body.operation !== 'download')) return reply(c.res, 422, { message: 'malformed batch request' });
  if (Array.isArray(body.transfers) && !body.transfers.includes('basic')) return reply(c.res, 422, { message: 'only the basic transfer is offered' });
  if (body.operation === 'upload' && !c.o.writers(c.repo)?.includes(c.user)) return reply(c.res, 403, { message: `${c.user} may not upload to ${c.repo}` });
  const base = `http://${c.req.headers.host}/${c.repo}.git/info/lfs`;
  const objects = [];
  for (const o of body.objects as BatchObject[]) objects.push(await batchObject(c, body.operation, o, base));
  reply(c.res, 200, { transfer: 'basic', objects, hash_algo: 'sha256' });
}

async function upload(c: Ctx, oid: string): Promise<void> {
  if (!c.o.writers(c.repo)?.includes(c.user)) return reply(c.res, 403, { message: `${c.user} may not upload to ${c.repo}` });
  const gitdir = c.o.gitdir(c.repo);
  await mkdir(path.join(gitdir, 'lfs', 'tmp'), { recursive: true });
  const temp = path.join(gitdir, 'lfs', 'tmp', `${oid}-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  const handle = await open(temp, 'wx');
  let received = 0;
  try {
    for await (const chunk of c.req as AsyncIterable<Buffer>) {
      hash.update(chunk);
      received += chunk.length;
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  const announced = Number(c.req.headers['content-length'] ?? received);
  if (hash.digest('hex') !== oid || received !== announced) {
    await rm(temp, { force: true });
    return reply(c.res, 422, { message: `the body does not hash to ${oid}` });
  }
  await mkdir(path.dirname(objectFile(gitdir, oid)), { recursive: true });
  await rename(temp, objectFile(gitdir, oid));
  c.res.writeHead(200).end();
}

async function download(c: Ctx, oid: string): Promise<void> {
  const file = objectFile(c.o.gitdir(c.repo), oid);
  const size = await sizeOf(file);
  if (size === undefined) return reply(c.res, 404, { message: 'Object does not exist' });
  c.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(file, { highWaterMark: 1 << 20 }).pipe(c.res);
}

async function verify(c: Ctx): Promise<void> {
  if (!c.o.writers(c.repo)?.includes(c.user)) return reply(c.res, 403, { message: `${c.user} may not upload to ${c.repo}` });
  const body = (await readJson(c.req).catch(() => null)) as { oid?: unknown; size?: unknown } | null;
  if (!body || typeof body.oid !== 'string' || !OID.test(body.oid)) return reply(c.res, 422, { message: 'malformed verify request' });
  const size = await sizeOf(objectFile(c.o.gitdir(c.repo), body.oid));
  if (size === undefined || size !== body.size) return reply(c.res, 404, { message: 'Object does not exist' });
  reply(c.res, 200, { message: 'ok' });
}

async function route(c: Ctx): Promise<void> {
  const m = c.req.method;
  const object = /^objects\/([0-9a-f]{64})$/.exec(c.rest)?.[1];
  if (m === 'POST' && c.rest === 'objects/batch') return batch(c);
  if (m === 'PUT' && object) return upload(c, object);
  if (m === 'GET' && object) return download(c, object);
  if (m === 'POST' && c.rest === 'verify') return verify(c);
  reply(c.res, 404, { message: 'not found' });
}

function serve(config: LfsServerConfig): http.Server {
  const o: LfsServerOptions = { gitdir: (repo) => path.join(config.projectRoot, `${repo}.git`), writers: (repo) => config.writers[repo] };
  return http.createServer((req, res) => {
    const user = String(req.headers[USER_HEADER] ?? '');
    const repo = String(req.headers[REPO_HEADER] ?? '');
    const pathname = new URL(req.url ?? '/', 'http://x').pathname;
    const rest = pathname.startsWith(`/${repo}.git/info/lfs/`) ? pathname.slice(`/${repo}.git/info/lfs/`.length) : '';
    res.on('finish', () => appendFileSync(config.logFile, `${JSON.stringify({ user, method: req.method ?? '', path: pathname, status: res.statusCode })}\n`));
    if (!user || !o.writers(repo)) return reply(res, 404, { message: 'no such repository' });
    route({ req, res, user, repo, rest, o }).catch((e: Error) => (res.headersSent ? res.destroy() : reply(res, 500, { message: e.message })));
  });
}

/** Starts the server in a child process on a free port of 127.0.0.1. */
export async function startLfsServer(config: LfsServerConfig): Promise<LfsServer> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /^listening (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the LFS test server exited (${code}) before listening`)));
  });
  const exitHook = () => child.kill('SIGKILL');
  process.once('exit', exitHook);
  return {
    port,
    requests: () => (existsSync(config.logFile) ? readFileSync(config.logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LfsRequestLog) : []),
    close: async () => {
      process.off('exit', exitHook);
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = serve(JSON.parse(process.argv[2]!) as LfsServerConfig);
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`));
  process.on('SIGTERM', () => (server.closeAllConnections(), server.close(() => process.exit(0))));
}
