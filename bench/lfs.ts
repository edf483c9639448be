/**
 * A 200 MB incompressible checkpoint through Git LFS over HTTP (the test git server with its LFS
 * API, test/helpers/git-server.ts), fedgit against the native `git lfs` client in the same run:
 * wall time of the whole command and its peak RSS (GNU time's %M: the largest process of the
 * command's tree), as a multiple of the checkpoint.
 *   push: fedgit commit + push (objects, then the ref) vs `git add` + `git commit` + `git push`
 *         (git-lfs's clean filter and pre-push upload);
 *   fetch: fedgit refresh of a fresh mirror + reading the weights vs `git clone` (no smudge) +
 *         `git lfs pull`.
 * Nothing is asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGitServer } from '../test/helpers/git-server.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lfs-worker.js');
const MB = 1024 * 1024;
const USER = 'bench';
const TOKEN = 'bench-token';

/** Wall time of the whole command, its peak RSS, and for fedgit the operation's own time (`innerMs`, from the worker). */
type Measured = { ms: number; peakKb: number; innerMs?: number };

function measure(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Measured {
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { ...options, maxBuffer: 1 << 26 });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString().slice(-2000)}`);
  const lines = r.stderr.toString().trim().split('\n');
  const inner = /"ms":([\d.]+)/.exec(r.stdout.toString())?.[1];
  return { ms, peakKb: Number(lines[lines.length - 1]), ...(inner ? { innerMs: Number(inner) } : {}) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function row(label: string, size: number, ours: Measured[], native: Measured[]): string {
  const [o, n] = [median(ours.map((m) => m.ms)), median(native.map((m) => m.ms))];
  const peak = (ms: Measured[]) => Math.max(...ms.map((m) => m.peakKb)) * 1024;
  const inner = median(ours.map((m) => m.innerMs ?? NaN));
  return `${label.padEnd(6)} ${o.toFixed(0).padStart(8)} (${inner.toFixed(0)}) ${n.toFixed(0).padStart(8)}  ${(o / n).toFixed(2).padStart(5)} (${(inner / n).toFixed(2)})  ${(peak(ours) / MB).toFixed(0).padStart(5)} MB (${(peak(ours) / size).toFixed(2)}×)  ${(peak(native) / MB).toFixed(0).padStart(5)} MB (${(peak(native) / size).toFixed(2)}×)`;
}

export async function benchLfs(sizeMb = 200, reps = 3): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-lfs-'));
  const server = await startGitServer({ users: { [USER]: TOKEN }, repos: { bench: { writers: [USER] } }, lfs: true });
  const env = { ...process.env, HOME: path.join(dir, 'home'), GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@x' };
  try {
    execFileSync('mkdir', ['-p', env.HOME]);
    execFileSync('git', ['lfs', 'install', '--skip-repo'], { env, stdio: 'pipe' });
    const work = path.join(dir, 'native');
    execFileSync('git', ['clone', '-q', server.url('bench', USER), work], { env, stdio: 'pipe' });
    const gitIn = (...args: string[]) => execFileSync('git', args, { cwd: work, env, stdio: 'pipe' });
    gitIn('checkout', '-q', '-b', 'native-bench');
    gitIn('lfs', 'track', '*.safetensors');
    gitIn('config', 'lfs.locksverify', 'false');
    const size = sizeMb * MB;
    const file = path.join(dir, 'weights.safetensors');
    const push = { ours: [] as Measured[], native: [] as Measured[] };
    const fetch = { ours: [] as Measured[], native: [] as Measured[] };
    for (let i = 0; i < reps; i++) {
      // Random bytes: weights do not compress, and a new checkpoint each time, as every round makes.
      await writeFile(file, randomBytes(size));
      push.ours.push(measure(process.execPath, [WORKER, 'push', server.url('bench'), path.join(dir, `push-cache-${i}`), file, USER, TOKEN], { env }));
      await writeFile(path.join(work, 'weights.safetensors'), randomBytes(size));
      push.native.push(measure('sh', ['-c', 'git add .gitattributes weights.safetensors && git commit -q -m bench && git push -q origin native-bench'], { cwd: work, env }));
      fetch.ours.push(measure(process.execPath, [WORKER, 'fetch', server.url('bench'), path.join(dir, `fetch-cache-${i}`), 'fedgit-bench', USER, TOKEN], { env }));
      const clone = path.join(dir, `clone-${i}`);
      fetch.native.push(measure('sh', ['-c', `GIT_LFS_SKIP_SMUDGE=1 git clone -q -b native-bench '${server.url('bench', USER)}' '${clone}' && cd '${clone}' && git lfs pull`], { env }));
      await rm(clone, { recursive: true, force: true });
      await rm(path.join(dir, `fetch-cache-${i}`), { recursive: true, force: true });
      await rm(path.join(dir, `push-cache-${i}`), { recursive: true, force: true });
    }
    console.log(`${sizeMb} MB incompressible checkpoint through Git LFS over HTTP (nginx + the LFS test server), median of ${reps}; peak RSS (GNU time %M) as × the checkpoint`);
    console.log('fedgit ms: the whole command (in brackets: the operation alone, without node start-up and, for push, loading the weights file into memory)');
    console.log('op      fedgit ms        git-lfs ms ratio         fedgit peak        git-lfs peak');
    console.log(row('push', size, push.ours, push.native));
    console.log(row('fetch', size, fetch.ours, fetch.native));
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
