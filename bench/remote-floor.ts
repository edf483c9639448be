/**
 * What the git server itself costs a round over HTTP, whatever the
 * participants do. A round's critical path holds two pushes (the aggregator's
 * global commit, the edge's update) and two fetches (the edge reads the global
 * commit, the aggregator the last update), each after a listing unless a push
 * event named the values the fetch follows. This part times
 * exactly those operations in a loop on the test git server (nginx +
 * fcgiwrap + git http-backend, test/helpers/git-server.ts): a fedgit mirror
 * pushes a 1 MB update like the no-op app's, another refreshes (listing,
 * fetch), `cycles` times. It prints the client's view, nginx's request times
 * and, from git's own trace2 events, every process the server ran for them.
 * Nothing is asserted.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGitServer } from '../test/helpers/git-server.js';
import { createOpener } from '../operator/store/open-repository.js';
import { noopInitialWeights } from '../edge-app/toy/noop.js';
import { requestKind } from './remote-timeline.js';

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

type Trace2Event = { event: string; sid: string; child_id?: number; child_class?: string; hook_name?: string; argv?: string[]; t_rel?: number; t_abs?: number };

/** Each process the server ran, by what it was (`unpack-objects`, `hook post-receive`…): its durations in ms. Pure. */
export function processTimes(lines: readonly string[]): Map<string, number[]> {
  const started = new Map<string, string>();
  /** Per request (git http-backend's own session): what it ran first, which says what the request was. */
  const firstChild = new Map<string, string>();
  const times = new Map<string, number[]>();
  const add = (label: string, seconds: number) => times.set(label, [...(times.get(label) ?? []), seconds * 1000]);
  for (const line of lines) {
    let e: Trace2Event;
    try {
      e = JSON.parse(line) as Trace2Event;
    } catch {
      continue;
    }
    const key = `${e.sid} ${e.child_id}`;
    if (e.event === 'child_start') {
      const label = e.child_class === 'hook' ? `hook ${e.hook_name}` : labelOf(e.argv ?? []);
      started.set(key, label);
      if (!e.sid.includes('/') && !firstChild.has(e.sid)) firstChild.set(e.sid, label);
    } else if (e.event === 'child_exit' && started.has(key) && e.t_rel !== undefined) {
      add(started.get(key)!, e.t_rel);
    } else if (e.event === 'exit' && !e.sid.includes('/') && e.t_abs !== undefined) {
      add(`http-backend, the whole request: ${firstChild.get(e.sid) ?? '?'}`, e.t_abs);
    }
  }
  return times;
}

function labelOf(argv: readonly string[]): string {
  const command = argv.slice(1).find((a) => !a.startsWith('-')) ?? argv[0] ?? '?';
  if (argv.includes('--http-backend-info-refs')) return `${command} (advertisement)`;
  if (command === 'rev-list') return 'rev-list (connectivity check)';
  if (command === 'for-each-ref') return 'for-each-ref (for the connectivity check)';
  return argv.includes('--auto') ? `${command} --auto` : command;
}

export async function benchRemoteFloor(cycles = 10, sizeBytes = 1_000_000): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-floor-'));
  // The push's webhook goes somewhere that answers, so the hook and the delivery run as in a round.
  const endpoint = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(204).end()));
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  const trace = path.join(dir, 'trace2.jsonl');
  const server = await startGitServer({
    users: { writer: 'w-pw', reader: 'r-pw' },
    repos: { 'edge-x': { writers: ['writer'], hooks: [{ url: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/hooks`, secret: 's' }] } },
    trace2EventFile: trace,
  });
  try {
    const writer = await createOpener({ cacheDir: path.join(dir, 'w'), auth: { username: 'writer', token: 'w-pw' }, listOnlyWhenStale: true }).require(server.url('edge-x'), 'edge-x');
    const reader = await createOpener({ cacheDir: path.join(dir, 'r'), auth: { username: 'reader', token: 'r-pw' } }).require(server.url('edge-x'), 'edge-x');
    const author = { name: 'bench', email: 'bench@example.org', timestamp: 1 };
    const ref = 'refs/heads/fedgit/floor-00000000';
    let parent: string | null = null;
    const push: number[] = [];
    const refresh: number[] = [];
    let timedFrom = 0;
    let traceFrom = 0;
    for (let i = -1; i < cycles; i++) {
      if (i === 0) {
        // The first cycle creates the branch (and the first push reads the real advertisement): not timed.
        timedFrom = server.accessLog().length;
        traceFrom = (await stat(trace)).size;
      }
      const weights = noopInitialWeights({ sizeBytes }, i + 2).get('noop.weight')!.data;
      const commit = await writer.writeCommit({ files: { 'weights.safetensors': Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength) }, parents: parent ? [parent] : [], message: `update ${i}\n`, author });
      const t0 = performance.now();
      await writer.updateRef(ref, commit, parent);
      const t1 = performance.now();
      await reader.refresh();
      const t2 = performance.now();
      if (i >= 0) (push.push(t1 - t0), refresh.push(t2 - t1));
      parent = commit;
    }
    const log = server.accessLog().slice(timedFrom);
    const nginx = (kind: string) => median(log.filter((r) => requestKind(r) === kind).map((r) => r.requestMs));
    const [pushMs, listMs, fetchMs] = [nginx('POST git-receive-pack'), nginx('GET info/refs git-upload-pack'), nginx('POST git-upload-pack')];
    console.log(`remote-floor: ${cycles} × (a mirror pushes a ${(sizeBytes / 1e6).toFixed(1)} MB update, another refreshes: listing + fetch), test git server, medians`);
    console.log(`  client: push ${median(push).toFixed(0)} ms (nginx: ${pushMs} ms), refresh ${median(refresh).toFixed(0)} ms (nginx: listing ${listMs} ms, fetch ${fetchMs} ms)`);
    console.log(`  requests per cycle: ${(log.length / cycles).toFixed(1)} (${[...new Set(log.map(requestKind))].join(', ')})`);
    const times = processTimes((await readFile(trace)).subarray(traceFrom).toString('utf8').split('\n'));
    console.log('  inside the server, per process git ran (trace2; count, median):');
    for (const [label, ms] of [...times].sort(([a], [b]) => a.localeCompare(b))) console.log(`    ${label.padEnd(58)} ×${String(ms.length).padStart(3)} ${median(ms).toFixed(1).padStart(7)} ms`);
    console.log(`  the server's floor on a round's critical path at nginx's medians: 2 pushes + 2 fetches ${2 * (pushMs + fetchMs)} ms (push events naming the values, webhooks); with a listing before each fetch (polling) ${2 * (pushMs + listMs + fetchMs)} ms`);
  } finally {
    await server.stop();
    await new Promise<void>((resolve) => endpoint.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}
