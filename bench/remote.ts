/**
 * Round overhead over HTTP (issue 5): the no-op app, 2 edges, 1 MB of
 * weights, every participant a separate process talking to a real git server
 * (git http-backend behind nginx, test/helpers/git-server.ts), measured three
 * ways in the same run:
 *   (a) webhooks: the server delivers signed push events to each participant's
 *       endpoint; the poll period is 10 minutes, so only webhooks drive rounds;
 *   (b) polling every second, no webhooks;
 *   (c) reference: one machine, local repositories (`fedgit run`, as
 *       bench/orchestration.ts does).
 * Per round = from one global commit to the next, seen by polling the global
 * branch in the (server's) bare repository every 2 ms. Nothing is asserted.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { roundStats, watchGlobalBranch, type RoundStats } from './round-stats.js';
import { freePort, startGitServer, type GitServer, type WebhookTarget } from '../test/helpers/git-server.js';
import { describeTimeline, roundTimeline } from './remote-timeline.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedgit.js');
const EDGES = ['hospital-a', 'hospital-b'] as const;
const PARTICIPANTS = ['aggregator', ...EDGES] as const;
type Participant = (typeof PARTICIPANTS)[number];
const TIMEOUT_MS = 600_000;

type Stats = RoundStats & { label: string; wallMs: number };

const planYaml = (rounds: number, sizeBytes: number) =>
  `name: noop\nrounds: ${rounds}\nedges: [${EDGES.join(', ')}]\nroundDeadline: 10m\napp:\n  id: noop\n  options: { sizeBytes: ${sizeBytes} }\n`;


function stats(label: string, seen: ReadonlyArray<{ at: number }>, wallMs: number): Stats {
  return { label, wallMs, ...roundStats(seen) };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function startCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + d).slice(-8000)));
  child.stderr!.on('data', (d) => (output = (output + d).slice(-8000)));
  return Object.assign(child, { output: () => output });
}

/** Waits for every process to exit 0 (or kills them all at the timeout); throws with their output otherwise. */
async function allExit(label: string, procs: Array<ChildProcess & { output: () => string }>): Promise<void> {
  const timer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), TIMEOUT_MS);
  try {
    const codes = await Promise.all(procs.map(exitOf));
    const bad = codes.findIndex((c) => c !== 0);
    if (bad >= 0) throw new Error(`${label}: a participant exited with ${codes[bad]}:\n${procs[bad]!.output().slice(-3000)}`);
  } finally {
    clearTimeout(timer);
  }
}

const PASSWORDS: Record<Participant | 'admin', string> = { admin: 'admin-pw', aggregator: 'agg-pw', 'hospital-a': 'a-pw', 'hospital-b': 'b-pw' };
const HOOK_SECRETS: Record<Participant, string> = { aggregator: 'agg-hook-secret', 'hospital-a': 'a-hook-secret', 'hospital-b': 'b-hook-secret' };

type HttpOptions = { rounds: number; sizeBytes: number; webhooks: boolean; poll: string };
type Deliveries = { deliveries: number; failed: string; medianMs: number };

/** (a) and (b): a fresh git server, the plan pushed by an admin with plain git, three participant processes. */
async function overHttp(label: string, o: HttpOptions): Promise<{ stats: Stats; server: Deliveries; requests: string; timeline: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-remote-'));
  const ports = {} as Record<Participant, number>;
  for (const p of PARTICIPANTS) ports[p] = await freePort();
  let server: GitServer | undefined;
  const procs: Array<ChildProcess & { output: () => string }> = [];
  try {
    server = await startBenchGitServer(o.webhooks ? ports : null);
    const base = server.url('plan').replace(/\/plan\.git$/, '');
    await pushPlan(server, path.join(dir, 'plan-work'), o);
    const started = performance.now();
    for (const p of PARTICIPANTS) procs.push(await startParticipant(p, path.join(dir, p), base, o, ports[p]));
    const finished = allExit(label, procs);
    const seen = await watchGlobalBranch(server.gitdir('global'), finished);
    await finished;
    const wallMs = performance.now() - started;
    const edgeHooks = Object.fromEntries(EDGES.map((e) => [e, `http://127.0.0.1:${ports[e]}/hooks`]));
    const timeline = o.webhooks ? describeTimeline(roundTimeline(server.accessLog(), server.deliveries(), 'aggregator', edgeHooks)) : '';
    return { stats: stats(label, seen, wallMs), server: summariseDeliveries(server), requests: requestsPerRound(server, o.rounds), timeline };
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The plan, global and edge repositories, each writable by its owner; with `hookPorts`, pushes are delivered to those who read them. */
function startBenchGitServer(hookPorts: Record<Participant, number> | null): Promise<GitServer> {
  const hook = (p: Participant): WebhookTarget => ({ url: `http://127.0.0.1:${hookPorts![p]}/hooks`, secret: HOOK_SECRETS[p] });
  const hooks = (...ps: Participant[]) => (hookPorts ? { hooks: ps.map(hook) } : {});
  return startGitServer({
    users: { ...PASSWORDS },
    repos: {
      plan: { writers: ['admin'], ...hooks(...PARTICIPANTS) },
      global: { writers: ['aggregator'], ...hooks(...EDGES) },
      ...Object.fromEntries(EDGES.map((e) => [`edge-${e}`, { writers: [e], ...hooks('aggregator') }])),
    },
  });
}

/** The admin commits plan.yaml in a clone at `work` and pushes it, with plain git. */
async function pushPlan(server: GitServer, work: string, o: { rounds: number; sizeBytes: number }): Promise<void> {
  execFileSync('git', ['clone', '-q', server.url('plan', 'admin'), work], { stdio: 'pipe' });
  await writeFile(path.join(work, 'plan.yaml'), planYaml(o.rounds, o.sizeBytes));
  const gitc = (...args: string[]) => execFileSync('git', ['-C', work, '-c', 'user.name=admin', '-c', 'user.email=admin@example.org', ...args], { stdio: 'pipe' });
  gitc('add', 'plan.yaml');
  gitc('commit', '-q', '-m', 'Plan noop');
  gitc('push', '-q', 'origin', 'HEAD:refs/heads/main');
}

/** One participant process in `home`, with its participant.yaml (a webhook endpoint on `hookPort` when webhooks are on). */
async function startParticipant(p: Participant, home: string, base: string, o: HttpOptions, hookPort: number): Promise<ChildProcess & { output: () => string }> {
  await mkdir(home, { recursive: true });
  const webhook = o.webhooks ? `webhook: { listen: '127.0.0.1:${hookPort}', path: /hooks, secretEnv: FEDGIT_WEBHOOK_SECRET }\n` : '';
  await writeFile(
    path.join(home, 'participant.yaml'),
    `role: ${p === 'aggregator' ? 'aggregator' : 'edge'}\nname: ${p}\nrepos: { root: '${base}' }\nauth: { tokenEnv: FEDGIT_TOKEN }\nlogs: logs\npollInterval: ${o.poll}\n${webhook}`,
  );
  return startCli([p === 'aggregator' ? 'aggregator' : 'edge', '--config', 'participant.yaml', '--exit-when-done'], home, { FEDGIT_TOKEN: PASSWORDS[p], FEDGIT_WEBHOOK_SECRET: HOOK_SECRETS[p] });
}

/** The git server's requests per round, by user and kind (ref listing, fetch, push): what a participant costs the server. */
function requestsPerRound(server: GitServer, rounds: number): string {
  const kinds = new Map<string, number>();
  for (const r of server.accessLog()) {
    const kind = r.path.endsWith('/git-receive-pack') ? 'push' : r.path.endsWith('/git-upload-pack') ? 'upload-pack' : r.path.endsWith('/info/refs') ? 'refs' : 'other';
    kinds.set(`${r.user || '-'} ${kind}`, (kinds.get(`${r.user || '-'} ${kind}`) ?? 0) + 1);
  }
  const total = [...kinds.values()].reduce((a, b) => a + b, 0);
  return `${(total / rounds).toFixed(1)} requests per round (${[...kinds].sort().map(([k, n]) => `${k} ${(n / rounds).toFixed(1)}`).join(', ')})`;
}

/** How many webhook deliveries the server made, which were not accepted and why, and the median attempt. */
function summariseDeliveries(server: GitServer): Deliveries {
  const deliveries = server.deliveries();
  const ms = deliveries.map((d) => d.ms).sort((a, b) => a - b);
  const failures = deliveries
    .filter((d) => d.status === undefined || d.status >= 300)
    .reduce<Record<string, number>>((acc, d) => ((acc[d.error ?? `HTTP ${d.status}`] = (acc[d.error ?? `HTTP ${d.status}`] ?? 0) + 1), acc), {});
  return {
    deliveries: deliveries.length,
    failed: Object.entries(failures).map(([why, n]) => `${n} ${why}`).join(', ') || 'none failed',
    medianMs: ms.length ? ms[Math.floor(ms.length / 2)]! : 0,
  };
}

/** (c): `fedgit run` on one machine with local repositories. */
async function local(label: string, o: { rounds: number; sizeBytes: number }): Promise<Stats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-remote-local-'));
  try {
    const plan = path.join(dir, 'noop.yaml');
    await writeFile(plan, planYaml(o.rounds, o.sizeBytes));
    const started = performance.now();
    const child = startCli(['run', plan, '--timeout', String(TIMEOUT_MS / 1000)], dir);
    const finished = allExit(label, [child]);
    const seen = await watchGlobalBranch(path.join(dir, 'repos', 'global.git'), finished);
    await finished;
    return stats(label, seen, performance.now() - started);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** All three, or with `withPolling: false` only (a) and its reference (c): `npm run bench -- remote-webhooks`. */
export async function benchRemote(o: { rounds?: number; sizeBytes?: number; withPolling?: boolean } = {}): Promise<void> {
  const { rounds = 20, sizeBytes = 1_000_000, withPolling = true } = o;
  const a = await overHttp('(a) HTTP + webhooks, poll 10m', { rounds, sizeBytes, webhooks: true, poll: '10m' });
  const b = withPolling ? await overHttp('(b) HTTP, polling 1s, no webhooks', { rounds, sizeBytes, webhooks: false, poll: '1s' }) : undefined;
  const c = await local('(c) one machine, local repositories', { rounds, sizeBytes });
  console.log(`remote: no-op app, 2 edges, ${(sizeBytes / 1e6).toFixed(1)} MB weights, ${rounds} rounds; per round = global commit → next global commit`);
  const row = (s: Stats) =>
    `  ${s.label.padEnd(38)} median ${s.median.toFixed(0).padStart(5)} ms, p95 ${s.p95.toFixed(0).padStart(5)} ms, mean ${s.mean.toFixed(0).padStart(5)} ms (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)}, ${s.gaps.length} rounds, ${(s.wallMs / 1000).toFixed(1)} s in all)` +
    `  ×${(s.median / c.median).toFixed(2)} median, ×${(s.mean / c.mean).toFixed(2)} mean vs (c)`;
  for (const s of [a.stats, ...(b ? [b.stats] : []), c]) console.log(row(s));
  console.log(`  (a) ${a.requests}${b ? `\n  (b) ${b.requests}` : ''}`);
  console.log(`  (a) webhook deliveries by the server: ${a.server.deliveries}, median attempt ${a.server.medianMs} ms; not accepted: ${a.server.failed} (after the end, participants that had already exited)`);
  console.log(`  (a) where a round goes, from the server's logs: ${a.timeline}`);
}
