/**
 * What the experiment sweeps (compare-strategies, compare-privacy) share: the fedgit CLI as a
 * child process, a plan's global commits, and the test-set metrics of every round's global model.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Repository } from '../operator/git/repository.js';
import { parseGlobalRecord, type GlobalRecord } from '../operator/store/records.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedgit.js');

export type RoundMetrics = { readonly auc: number; readonly f1: number };

/** Runs the fedgit CLI, echoing its output; rejects on a non-zero exit. `env` is added to this process's environment. */
export function fedgit(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`fedgit ${args[0]} exited with ${code}`))));
  });
}

export function gitLines(gitdir: string, args: readonly string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['--git-dir', gitdir, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => (code === 0 ? resolve(out.split('\n').filter(Boolean)) : reject(new Error(`git ${args[0]} exited with ${code}`))));
  });
}

/** The global commits of the one plan a run's repositories hold, round 0 first. */
export async function globalRecords(repos: string): Promise<GlobalRecord[]> {
  const gitdir = path.join(repos, 'global.git');
  const [head] = await gitLines(gitdir, ['for-each-ref', '--format=%(objectname)', 'refs/heads/fedgit/']);
  if (!head) throw new Error(`${gitdir}: no plan branch`);
  const chain = await new Repository(gitdir).firstParentChain(head);
  return chain.map(parseGlobalRecord).filter((r): r is GlobalRecord => r !== undefined).reverse();
}

/** Macro AUC and class-1 F1 of every round's global model on `testData`, round 0 first. */
export async function perRoundMetrics(work: string, testData: string): Promise<RoundMetrics[]> {
  const repos = path.join(work, 'repos');
  const commits = (await globalRecords(repos)).map((r) => r.oid);
  const out = path.join(work, 'per-round');
  await fedgit(['evaluate', ...commits.flatMap((c) => ['--weights', c]), '--data', testData, '--repos', repos, '--out', out]);
  const report = JSON.parse(await readFile(path.join(out, 'evaluation.json'), 'utf8')) as { sets: Array<{ metrics: { macroAuc: number; classes: Record<string, { f1: number }> } }> };
  return report.sets.map((s) => ({ auc: s.metrics.macroAuc, f1: s.metrics.classes['1']!.f1 }));
}
