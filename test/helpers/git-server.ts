/**
 * A real git server for tests: git's own `git http-backend` behind nginx and
 * fcgiwrap, on 127.0.0.1 and a free port, with everything (config, pid, logs,
 * temp dirs, unix socket, repositories) under its own temporary prefix. The
 * system nginx is never touched.
 *
 * nginx authenticates (basic auth against its own htpasswd → 401); a small
 * generated CGI wrapper authorises (push only for the repository's writers →
 * 403) and then execs `git http-backend`. Repositories are bare, with
 * `http.receivepack true`, `receive.denyNonFastForwards true` (a push is a
 * compare-and-swap even with force) and `receive.denyDeletes true` (history
 * that audit reads cannot be deleted), as `fedgit setup` asks of a server.
 *
 * Optional push webhooks, as Gitea sends them: a repository with `hooks`
 * gets a server-side `post-receive` hook that, for every updated ref, POSTs a
 * Gitea-style push event (`{"ref","before","after","repository":{"full_name",
 * "clone_url"},"pusher"}`) to each url with `X-Gitea-Event: push`,
 * `X-Gitea-Signature: <hex HMAC-SHA256 of the body>` (and the GitHub-style
 * `X-GitHub-Event` / `X-Hub-Signature-256` Gitea sends as well). The hook
 * only spools the push; the server's long-running deliverer
 * (test/helpers/webhook-deliverer.ts, in the process that started the server,
 * as Gitea delivers from its own) sends the events in the background after
 * the refs have moved, with a short timeout and errors ignored, so an endpoint
 * that is down or slow never blocks or fails a push. Every attempt is appended
 * to a log (`deliveries()`).
 *
 * Debian packages: nginx (or nginx-light), fcgiwrap, git.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_HEADER, USER_HEADER, startLfsServer, type LfsServer } from './lfs-server.js';
import { spoolingHook, startDeliverer, type Deliverer, type RepositoryHooks, type WebhookTarget } from './webhook-deliverer.js';

export type { WebhookTarget } from './webhook-deliverer.js';

export type GitServerOptions = {
  /** user name → password; every request must authenticate as one of them. */
  users: Record<string, string>;
  /** repository name (without `.git`, may contain `/`) → who may push, and optional push webhooks. Everyone authenticated may read. */
  repos: Record<string, { writers: string[]; hooks?: WebhookTarget[] }>;
  /** Per delivery attempt (connect + response), like Gitea's webhook timeout; default 5000 ms. */
  webhookTimeoutMs?: number;
  /** Serve the Git LFS API at `<repo>.git/info/lfs` (test/helpers/lfs-server.ts), behind the same authentication. */
  lfs?: boolean;
  /** Every git process the server runs appends its trace2 events (JSON lines) here: what a request spends where (bench). */
  trace2EventFile?: string;
};

/** One delivery attempt of a push event, as logged by the post-receive hook. */
export type WebhookDelivery = {
  repo: string;
  ref: string;
  before: string;
  after: string;
  url: string;
  /** HTTP status of the endpoint's answer; absent when the request failed (then `error`). */
  status?: number;
  error?: string;
  /** When the deliverer started this attempt (ms since the epoch) and how long it took. */
  at: number;
  ms: number;
};

export type AccessLogEntry = {
  user: string; method: string; path: string; query: string; status: number; requestBytes: number; responseBytes: number;
  /** When nginx finished the request (ms since the epoch, ms resolution) and how long it took from its first byte read. */
  endMs: number; requestMs: number;
};

export type GitServer = {
  readonly port: number;
  /** `http://127.0.0.1:PORT/<repo>.git`; with `user`, the user's credentials are embedded (for native git). */
  url(repo: string, user?: string): string;
  /** Server-side path of the bare repository. */
  gitdir(repo: string): string;
  /** Server-side path of an LFS object of a repository (with `lfs: true`). */
  lfsObject(repo: string, oid: string): string;
  /** Requests the LFS server answered (with `lfs: true`): user, method, path, status. */
  lfsRequests(): Array<{ user: string; method: string; path: string; status: number }>;
  /** Parsed nginx access log so far (no credentials are logged). */
  accessLog(): AccessLogEntry[];
  /** Replaces a repository's push webhooks from the next push on (`[]` removes them). */
  setHooks(repo: string, hooks: WebhookTarget[]): Promise<void>;
  /** Every webhook delivery attempt so far, in the order they finished. */
  deliveries(): WebhookDelivery[];
  /** Stops nginx and fcgiwrap; connections are refused until `restart`. */
  stopTemporarily(): Promise<void>;
  /**
   * A crash: every git process the server runs is killed mid-request (SIGKILL to fcgiwrap's
   * process group) and nginx drops its connections at once. `restart` brings it back.
   */
  crash(): Promise<void>;
  /** Starts again on the same port, serving the same repositories (after a crash, without the lock files it left). */
  restart(): Promise<void>;
  /** Lock files that crashes left behind and `restart` removed. */
  staleLocksRemoved(): string[];
  /** Stops everything and removes the prefix. */
  stop(): Promise<void>;
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REPO = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

export class GitServerUnavailable extends Error {}

function findExecutable(name: string, candidates: string[]): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

function requirements(): { nginx: string; fcgiwrap: string; httpBackend: string } {
  const nginx = findExecutable('nginx', ['/usr/sbin/nginx']);
  const fcgiwrap = findExecutable('fcgiwrap', ['/usr/sbin/fcgiwrap']);
  let execPath = '';
  try {
    execPath = execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim();
  } catch {
    /* reported below */
  }
  const httpBackend = execPath ? path.join(execPath, 'git-http-backend') : '';
  const missing = [!nginx && 'nginx', !fcgiwrap && 'fcgiwrap', !(httpBackend && existsSync(httpBackend)) && 'git'].filter(Boolean);
  if (missing.length) {
    throw new GitServerUnavailable(`the test git server needs the Debian packages: ${missing.join(' ')} (apt-get install -y nginx fcgiwrap git)`);
  }
  return { nginx: nginx!, fcgiwrap: fcgiwrap!, httpBackend };
}

/** RFC 2307 `{SSHA}` entry, which nginx's auth_basic_user_file understands. */
function sshaEntry(user: string, password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return `${user}:{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Git LFS requests go to the LFS server, with the user nginx authenticated and the repository in headers. */
function lfsLocation(lfsPort: number | undefined): string {
  if (lfsPort === undefined) return '';
  return `location ~ ^/(?<lfs_repo>.+?)\\.git/info/lfs/ {
      proxy_pass http://127.0.0.1:${lfsPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header ${USER_HEADER} $remote_user;
      proxy_set_header ${REPO_HEADER} $lfs_repo;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 600s;
      proxy_send_timeout 600s;
    }`;
}

function nginxConf(o: { prefix: string; port: number; socket: string; wrapper: string; projectRoot: string; lfsPort?: number }): string {
  const p = (...parts: string[]) => path.join(o.prefix, ...parts);
  const asRoot = process.getuid?.() === 0;
  return `# generated by test/helpers/git-server.ts
${asRoot ? 'user root root;' : ''}
daemon off;
master_process on;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('logs', 'error.log')} warn;
events { worker_connections 256; }
http {
  access_log off;
  log_format git '$remote_user\\t$request_method\\t$uri\\t$args\\t$status\\t$request_length\\t$body_bytes_sent\\t$msec\\t$request_time';
  client_body_temp_path ${p('tmp', 'body')};
  proxy_temp_path ${p('tmp', 'proxy')};
  fastcgi_temp_path ${p('tmp', 'fastcgi')};
  uwsgi_temp_path ${p('tmp', 'uwsgi')};
  scgi_temp_path ${p('tmp', 'scgi')};
  server_tokens off;
  server {
    listen 127.0.0.1:${o.port};
    server_name localhost;
    access_log ${p('logs', 'access.log')} git;
    client_max_body_size 0;
    keepalive_timeout 65s;
    auth_basic "fedgit test git server";
    auth_basic_user_file ${p('htpasswd')};
    root ${p('empty')};
    ${lfsLocation(o.lfsPort)}
    location ~ ^/(?<git_repo>.+?)\\.git(?<git_path>/.*)$ {
      fastcgi_pass unix:${o.socket};
      fastcgi_read_timeout 600s;
      fastcgi_send_timeout 600s;
      fastcgi_buffering off;
      include ${p('fastcgi_params')};
      fastcgi_param SCRIPT_FILENAME ${o.wrapper};
      fastcgi_param GIT_PROJECT_ROOT ${o.projectRoot};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param FEDGIT_REPO $git_repo;
      fastcgi_param PATH_INFO /$git_repo.git$git_path;
      fastcgi_param REMOTE_USER $remote_user;
    }
    location / { }
  }
}
`;
}

const FASTCGI_PARAMS = `fastcgi_param QUERY_STRING $query_string;
fastcgi_param REQUEST_METHOD $request_method;
fastcgi_param CONTENT_TYPE $content_type;
fastcgi_param CONTENT_LENGTH $content_length;
fastcgi_param SCRIPT_NAME $fastcgi_script_name;
fastcgi_param REQUEST_URI $request_uri;
fastcgi_param DOCUMENT_URI $document_uri;
fastcgi_param SERVER_PROTOCOL $server_protocol;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
fastcgi_param SERVER_SOFTWARE nginx;
fastcgi_param REMOTE_ADDR $remote_addr;
fastcgi_param REMOTE_PORT $remote_port;
fastcgi_param SERVER_ADDR $server_addr;
fastcgi_param SERVER_PORT $server_port;
fastcgi_param SERVER_NAME $server_name;
fastcgi_param HTTP_CONTENT_ENCODING $http_content_encoding;
`;

/** The CGI script: 403 for a push by anyone but the repository's writers, otherwise git http-backend. */
function wrapperScript(httpBackend: string, repos: Record<string, { writers: string[] }>, trace2EventFile: string | undefined): string {
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const allowed = Object.entries(repos).flatMap(([repo, { writers }]) => writers.map((w) => `'${repo}:${w}'`));
  return `#!/bin/sh
# generated by test/helpers/git-server.ts
write=0
case "$PATH_INFO" in
  */git-receive-pack) write=1 ;;
  */info/refs) case "&$QUERY_STRING&" in *'&service=git-receive-pack&'*) write=1 ;; esac ;;
esac
if [ "$write" = 1 ]; then
  case "$FEDGIT_REPO:$REMOTE_USER" in
    ${allowed.length ? allowed.join('|') : "'-'"}) ;;
    *) printf 'Status: 403 Forbidden\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s may not push to %s\\n' "$REMOTE_USER" "$FEDGIT_REPO"; exit 0 ;;
  esac
fi
${trace2EventFile ? `GIT_TRACE2_EVENT=${q(trace2EventFile)}; export GIT_TRACE2_EVENT\n` : ''}exec ${httpBackend}
`;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => (clearTimeout(timer), resolve(true)));
  });
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  if (!(await waitExit(child, 5000))) {
    child.kill('SIGKILL');
    await waitExit(child, 5000);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-child.pid!, signal);
    return true;
  } catch {
    return false; // the group is gone
  }
}

/** Stops a child started with `detached: true` together with everything it forked. */
async function stopGroup(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid) return;
  signalGroup(child, 'SIGTERM');
  await waitExit(child, 2000);
  await new Promise((r) => setTimeout(r, 50));
  signalGroup(child, 'SIGKILL');
  await waitExit(child, 2000);
  groups.delete(child);
}

/** Removes every `*.lock` file below `root`; returns their paths. */
async function removeLockFiles(root: string): Promise<string[]> {
  const removed: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(file);
      else if (entry.name.endsWith('.lock')) {
        await rm(file, { force: true });
        removed.push(file);
      }
    }
  };
  await walk(root);
  return removed;
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
const groups = new Set<ChildProcess>();
function track(child: ChildProcess, group = false): void {
  live.add(child);
  if (group) groups.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
      for (const c of groups) signalGroup(c, 'SIGKILL');
    });
  }
}

function checkHooks(repo: string, hooks: WebhookTarget[]): void {
  for (const h of hooks) {
    let url: URL;
    try {
      url = new URL(h.url);
    } catch {
      throw new Error(`webhook of ${repo}: invalid url ${JSON.stringify(h.url)}`);
    }
    if (url.protocol !== 'http:') throw new Error(`webhook of ${repo}: only http:// urls are supported, not ${JSON.stringify(h.url)}`);
    if (typeof h.secret !== 'string' || h.secret.length === 0) throw new Error(`webhook of ${repo}: a secret is required`);
  }
}

export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  const bins = requirements();
  for (const user of Object.keys(options.users)) if (!NAME.test(user)) throw new Error(`invalid user name ${JSON.stringify(user)}`);
  for (const [repo, { writers, hooks }] of Object.entries(options.repos)) {
    if (!REPO.test(repo) || repo.endsWith('.git')) throw new Error(`invalid repository name ${JSON.stringify(repo)} (give it without .git)`);
    for (const w of writers) if (!(w in options.users)) throw new Error(`writer ${w} of ${repo} is not a user`);
    checkHooks(repo, hooks ?? []);
  }

  const prefix = await mkdtemp(path.join(os.tmpdir(), 'fedgit-gitsrv-'));
  const projectRoot = path.join(prefix, 'repos');
  const socket = path.join(prefix, 'fcgiwrap.sock');
  const wrapper = path.join(prefix, 'git-cgi.sh');
  const confFile = path.join(prefix, 'nginx.conf');
  const accessLogFile = path.join(prefix, 'logs', 'access.log');
  const errorLogFile = path.join(prefix, 'logs', 'error.log');
  const fcgiLogFile = path.join(prefix, 'logs', 'fcgiwrap.log');
  const deliveryLogFile = path.join(prefix, 'logs', 'webhooks.jsonl');
  const spoolDir = path.join(prefix, 'hooks', 'spool');
  for (const d of ['logs', 'tmp', 'empty', 'repos', 'hooks', 'hooks/spool']) await mkdir(path.join(prefix, d), { recursive: true });
  await writeFile(path.join(prefix, 'htpasswd'), Object.entries(options.users).map(([u, pw]) => sshaEntry(u, pw)).join('\n') + '\n', { mode: 0o644 });
  await writeFile(path.join(prefix, 'fastcgi_params'), FASTCGI_PARAMS);
  await writeFile(wrapper, wrapperScript(bins.httpBackend, options.repos, options.trace2EventFile));
  await chmod(wrapper, 0o755);

  const gitdir = (repo: string) => path.join(projectRoot, `${repo}.git`);
  for (const repo of Object.keys(options.repos)) {
    const dir = gitdir(repo);
    await mkdir(dir, { recursive: true });
    execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', dir]);
    execFileSync('git', ['--git-dir', dir, 'config', 'http.receivepack', 'true']);
    execFileSync('git', ['--git-dir', dir, 'config', 'receive.denyNonFastForwards', 'true']);
    // What `fedgit setup` asks of a server: branches cannot be deleted, so merged edge commits stay auditable.
    execFileSync('git', ['--git-dir', dir, 'config', 'receive.denyDeletes', 'true']);
  }

  let port = 0;
  const lfs: LfsServer | undefined = options.lfs
    ? await startLfsServer({ projectRoot, writers: Object.fromEntries(Object.entries(options.repos).map(([r, { writers }]) => [r, writers])), logFile: path.join(prefix, 'logs', 'lfs.jsonl') })
    : undefined;
  // Outside the served tree: the secrets are never reachable over HTTP.
  const hooksConfig = (repo: string) => path.join(prefix, 'hooks', `${encodeURIComponent(repo)}.json`);
  async function installHooks(repo: string, hooks: WebhookTarget[]): Promise<void> {
    const config = hooksConfig(repo);
    const tmp = `${config}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ repo, cloneUrl: `http://127.0.0.1:${port}/${repo}.git`, hooks, timeoutMs: options.webhookTimeoutMs ?? 5000 }), { mode: 0o600 });
    await rename(tmp, config);
    const hook = path.join(gitdir(repo), 'hooks', 'post-receive');
    if (hooks.length === 0) return rm(hook, { force: true });
    await mkdir(path.dirname(hook), { recursive: true });
    await writeFile(hook, spoolingHook(spoolDir, repo));
    await chmod(hook, 0o755);
  }
  let nginx: ChildProcess | undefined;
  let fcgiwrap: ChildProcess | undefined;
  let stopped = false;
  let crashed = false;
  const staleLocksRemoved: string[] = [];

  const childOutput = (child: ChildProcess) => {
    let out = '';
    child.stdout?.on('data', (d) => (out = (out + d).slice(-4000)));
    child.stderr?.on('data', (d) => (out = (out + d).slice(-4000)));
    return () => out;
  };

  async function startProcesses(): Promise<void> {
    await rm(socket, { force: true });
    // Its own process group: fcgiwrap's preforked workers outlive their parent unless the whole group is signalled.
    const fcgiLog = openSync(fcgiLogFile, 'a');
    fcgiwrap = spawn(bins.fcgiwrap, ['-c', '8', '-f', '-s', `unix:${socket}`], { stdio: ['ignore', fcgiLog, fcgiLog], detached: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    closeSync(fcgiLog);
    track(fcgiwrap, true);
    for (let i = 0; !existsSync(socket); i++) {
      if (fcgiwrap.exitCode !== null || i > 200) throw new Error(`fcgiwrap did not start: ${readFileSync(fcgiLogFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await writeFile(confFile, nginxConf({ prefix, port, socket, wrapper, projectRoot, ...(lfs ? { lfsPort: lfs.port } : {}) }));
    nginx = spawn(bins.nginx, ['-p', prefix, '-c', confFile, '-e', errorLogFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(nginx);
    const nginxOut = childOutput(nginx);
    for (let i = 0; ; i++) {
      if (nginx.exitCode !== null || nginx.signalCode !== null) {
        const log = existsSync(errorLogFile) ? readFileSync(errorLogFile, 'utf8').slice(-2000) : '';
        throw new Error(`nginx exited (${nginx.exitCode ?? nginx.signalCode}): ${nginxOut()} ${log}`);
      }
      if (await probe(port)) return;
      if (i > 400) throw new Error('nginx did not start listening within 10 s');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function stopProcesses(): Promise<void> {
    await stopChild(nginx, 'SIGTERM');
    await stopGroup(fcgiwrap);
    nginx = fcgiwrap = undefined;
  }

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await startProcesses();
      break;
    } catch (e) {
      await stopProcesses();
      if (attempt >= 3) {
        await lfs?.close();
        await rm(prefix, { recursive: true, force: true });
        throw e;
      }
    }
  }
  // The port is known now (the clone url in the events names it).
  for (const [repo, { hooks }] of Object.entries(options.repos)) if (hooks?.length) await installHooks(repo, hooks);
  const deliverer: Deliverer = startDeliverer({
    spoolDir,
    logFile: deliveryLogFile,
    timeoutMs: options.webhookTimeoutMs ?? 5000,
    // Read at delivery time, as the per-push program did: `setHooks` applies from the next push on.
    hooksOf: async (repo) => (Object.hasOwn(options.repos, repo) ? (JSON.parse(await readFile(hooksConfig(repo), 'utf8')) as RepositoryHooks) : undefined),
  });

  return {
    get port() {
      return port;
    },
    url(repo, user) {
      if (user === undefined) return `http://127.0.0.1:${port}/${repo}.git`;
      const pw = options.users[user];
      if (pw === undefined) throw new Error(`unknown user ${user}`);
      return `http://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${repo}.git`;
    },
    gitdir,
    lfsObject: (repo, oid) => path.join(gitdir(repo), 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid),
    lfsRequests: () => lfs?.requests() ?? [],
    accessLog() {
      if (!existsSync(accessLogFile)) return [];
      return readFileSync(accessLogFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [user = '', method = '', p = '', query = '', status = '0', req = '0', res = '0', msec = '0', seconds = '0'] = line.split('\t');
          return {
            user: user === '-' ? '' : user, method, path: p, query: query === '-' ? '' : query, status: Number(status), requestBytes: Number(req), responseBytes: Number(res),
            endMs: Math.round(Number(msec) * 1000), requestMs: Math.round(Number(seconds) * 1000),
          };
        });
    },
    async setHooks(repo, hooks) {
      if (stopped) throw new Error('the git server was stopped for good');
      if (!(repo in options.repos)) throw new Error(`unknown repository ${repo}`);
      checkHooks(repo, hooks);
      await installHooks(repo, hooks.map(({ url, secret }) => ({ url, secret })));
    },
    deliveries() {
      if (!existsSync(deliveryLogFile)) return [];
      return readFileSync(deliveryLogFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as WebhookDelivery];
          } catch {
            return []; // a line being written right now
          }
        });
    },
    async stopTemporarily() {
      await stopProcesses();
    },
    async crash() {
      if (fcgiwrap) signalGroup(fcgiwrap, 'SIGKILL');
      await stopProcesses();
      crashed = true;
    },
    async restart() {
      if (stopped) throw new Error('the git server was stopped for good');
      await stopProcesses();
      // A git process killed mid-push leaves `<ref>.lock`, and git never breaks a ref lock by
      // itself: every later push of that ref fails until someone removes it. After a crash,
      // nothing of git's runs, so all locks are stale: removed as a server's start-up must.
      if (crashed) staleLocksRemoved.push(...(await removeLockFiles(projectRoot)));
      crashed = false;
      await startProcesses();
    },
    staleLocksRemoved() {
      return [...staleLocksRemoved];
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      deliverer.close();
      await stopProcesses();
      await lfs?.close();
      await rm(prefix, { recursive: true, force: true });
    },
  };
}
