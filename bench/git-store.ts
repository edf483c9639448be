/**
 * Writing and reading a checkpoint through fedgit's git store against native
 * git in the same run: time (ratio) and peak memory (as a multiple of the blob size).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Repository } from '../operator/git/repository.js';
import { gaussian, mulberry32 } from '../edge-app/random.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'git-store-worker.js');
const TIME = '/usr/bin/time';
const MB = 1024 * 1024;

type Measured = { ms: number; peakKb: number; stdout: string };

/** Runs a command under GNU time for its peak RSS; wall time measured here. */
function measure(cmd: string, args: string[], input?: string): Measured {
  const started = performance.now();
  const r = spawnSync(TIME, ['-f', '%M', cmd, ...args], { input, maxBuffer: 1 << 30 });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  const lines = r.stderr.toString().trim().split('\n');
  return { ms, peakKb: Number(lines[lines.length - 1]), stdout: r.stdout.toString() };
}

function weights(bytes: number): Buffer {
  const random = mulberry32(bytes);
  const data = new Float32Array(bytes / 4);
  for (let i = 0; i < data.length; i++) data[i] = gaussian(random) * 0.05;
  return Buffer.from(data.buffer);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchGitStore(sizesMb: readonly number[] = [4, 40, 200], reps = 3): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-store-'));
  try {
    const idle = measure(process.execPath, [WORKER, 'idle', dir, '']);
    console.log(`git store vs native git (median of ${reps}; peak memory above an idle node process, ${(idle.peakKb / 1024).toFixed(0)} MB, as × blob size)`);
    console.log('size     op     fedgit ms  git ms   ratio  fedgit peak  git peak');
    for (const sizeMb of sizesMb) {
      const file = path.join(dir, `w${sizeMb}.bin`);
      await writeFile(file, weights(sizeMb * MB));
      const ours = await Repository.ensureBare(path.join(dir, `ours-${sizeMb}.git`));
      const theirs = path.join(dir, `git-${sizeMb}.git`);
      execFileSync('git', ['init', '-q', '--bare', theirs]);
      const w = { ours: [] as number[], git: [] as number[], oursKb: 0, gitKb: 0 };
      const r = { ours: [] as number[], git: [] as number[], oursKb: 0, gitKb: 0 };
      let ourCommit = '';
      let blob = '';
      for (let i = 0; i < reps; i++) {
        // Each repetition writes a new blob (a different last byte), as every round does.
        const content = weights(sizeMb * MB);
        content.writeUInt32LE(i + 1, content.length - 4);
        await writeFile(file, content);
        const mine = measure(process.execPath, [WORKER, 'write', ours.gitdir, file]);
        w.ours.push(JSON.parse(mine.stdout).ms);
        w.oursKb = Math.max(w.oursKb, mine.peakKb - idle.peakKb);
        ourCommit = JSON.parse(mine.stdout).oid;
        const env = ['--git-dir', theirs];
        const hash = measure('git', [...env, 'hash-object', '-w', file]);
        blob = hash.stdout.trim();
        const tree = measure('git', [...env, 'mktree'], `100644 blob ${blob}\tweights.safetensors\n`);
        const commit = measure('git', [...env, 'commit-tree', tree.stdout.trim(), '-m', 'bench']);
        const update = measure('git', [...env, 'update-ref', 'refs/heads/bench', commit.stdout.trim()]);
        w.git.push(hash.ms + tree.ms + commit.ms + update.ms);
        w.gitKb = Math.max(w.gitKb, hash.peakKb, tree.peakKb, commit.peakKb, update.peakKb);
        const readMine = measure(process.execPath, [WORKER, 'read', ours.gitdir, ourCommit]);
        r.ours.push(JSON.parse(readMine.stdout).ms);
        r.oursKb = Math.max(r.oursKb, readMine.peakKb - idle.peakKb);
        const readGit = measure('git', [...env, 'cat-file', 'blob', blob]);
        r.git.push(readGit.ms);
        r.gitKb = Math.max(r.gitKb, readGit.peakKb);
      }
      const row = (op: string, m: typeof w) => {
        const ours = median(m.ours);
        const git = median(m.git);
        const x = (kb: number) => `${(kb / 1024).toFixed(0)} MB (${(kb / 1024 / sizeMb).toFixed(2)}×)`;
        console.log(`${`${sizeMb} MB`.padEnd(8)} ${op.padEnd(6)} ${ours.toFixed(0).padStart(9)}  ${git.toFixed(0).padStart(6)}  ${(ours / git).toFixed(2).padStart(6)}  ${x(m.oursKb).padStart(11)}  ${x(m.gitKb)}`);
      };
      row('write', w);
      row('read', r);
      await rm(file, { force: true });
    }
    console.log('ratio = fedgit time / native git time (native read = git cat-file blob into a pipe; native write = hash-object -w + mktree + commit-tree + update-ref)');
    console.log('fedgit times are measured inside the worker (no node start-up); git times include its process start-up, as a hook or script calling git would pay');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
