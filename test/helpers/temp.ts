/** Temporary folders and the fedgit CLI as a real process, for tests. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'fedgit.js');

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix = 'fedgit-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }));
  return dir;
}

export type CliResult = { code: number | null; stdout: string; stderr: string };

export function runCli(args: readonly string[], options: { cwd: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('exit', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

export function startCli(args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return Object.assign(child, { output: () => output });
}

export function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export function git(gitdir: string, ...args: string[]): string {
  return execFileSync('git', ['--git-dir', gitdir, ...args], { encoding: 'utf8' });
}

export async function writePlan(dir: string, name: string, yaml: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, yaml);
  return file;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const toyPlan = (o: { name?: string; rounds?: number; edges?: string[]; deadline?: string; minEdges?: number; epochDelayMs?: number } = {}) => `name: ${o.name ?? 'toy'}
rounds: ${o.rounds ?? 3}
edges: [${(o.edges ?? ['hospital-a', 'hospital-b']).join(', ')}]
roundDeadline: ${o.deadline ?? '10m'}
minEdges: ${o.minEdges ?? 1}
seed: 42
app:
  id: linear-toy
  options:
    features: 8
    samplesPerEdge: 100
    epochDelayMs: ${o.epochDelayMs ?? 0}
`;
