/**
 * Helpers for the chaos and bad-input tests: snapshots of what git holds (to prove
 * nothing was lost or changed), leftover lock files, seeded randomness and a tally.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { git } from './temp.js';
import { mulberry32 } from '../../edge-app/random.js';
import { AggregatorOperator } from '../../operator/reconcile/aggregator-operator.js';
import { reposUnder } from '../../operator/store/federation.js';
import { createOpener } from '../../operator/store/open-repository.js';
import { createLogger } from '../../operator/runtime/logging.js';
import type { Registries } from '../../operator/runtime/registries.js';

/** Every bare repository (`*.git`) directly under `repos`, sorted. */
export async function gitdirsUnder(repos: string): Promise<string[]> {
  const entries = await readdir(repos, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && e.name.endsWith('.git')).map((e) => path.join(repos, e.name)).sort();
}

/** Loose plus packed objects, as `git count-objects -v` counts them. */
export function objectCount(gitdir: string): number {
  const out = git(gitdir, 'count-objects', '-v');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(out)?.[1] ?? 0);
  return field('count') + field('in-pack');
}

export type GitState = Record<string, { readonly refs: string; readonly objects: number }>;

/** `git for-each-ref` and the object count of every repository under `repos`. */
export async function gitState(repos: string): Promise<GitState> {
  const state: GitState = {};
  for (const gitdir of await gitdirsUnder(repos)) {
    state[path.basename(gitdir)] = { refs: git(gitdir, 'for-each-ref', '--format=%(refname) %(objectname)'), objects: objectCount(gitdir) };
  }
  return state;
}

/** What changed between two snapshots, one line per difference (empty: nothing). */
export function gitStateChanges(before: GitState, after: GitState): string[] {
  const changes: string[] = [];
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[name];
    const a = after[name];
    if (!b) changes.push(`${name}: repository appeared`);
    else if (!a) changes.push(`${name}: repository disappeared`);
    else {
      if (b.refs !== a.refs) changes.push(`${name}: refs changed:\n--- before\n${b.refs}--- after\n${a.refs}`);
      if (b.objects !== a.objects) changes.push(`${name}: object count ${b.objects} → ${a.objects}`);
    }
  }
  return changes;
}

/** Every `*.lock` file below `root`. */
export async function lockFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (dir.endsWith('objects')) continue; // object fan-out folders hold no locks
        await walk(p);
      } else if (e.name.endsWith('.lock')) found.push(p);
    }
  };
  await walk(root);
  return found;
}

/** Interrupted object writes (`tmp_obj_*`, which git itself ignores) below a repository's objects. */
export async function tempObjects(gitdir: string): Promise<string[]> {
  const found: string[] = [];
  for (const fan of await readdir(path.join(gitdir, 'objects')).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{2}$/.test(fan)) continue;
    for (const f of await readdir(path.join(gitdir, 'objects', fan)).catch(() => [] as string[])) if (f.startsWith('tmp_obj_')) found.push(path.join(gitdir, 'objects', fan, f));
  }
  return found;
}

/** Objects no ref reaches (`git fsck --unreachable`). */
export function unreachableObjects(gitdir: string): Set<string> {
  const out = execFileSync('git', ['--git-dir', gitdir, 'fsck', '--unreachable', '--no-reflogs', '--no-progress'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return new Set([...out.matchAll(/^unreachable \w+ ([0-9a-f]{40})$/gm)].map((m) => m[1]!));
}

export function fsckStrict(gitdir: string): void {
  execFileSync('git', ['--git-dir', gitdir, 'fsck', '--strict', '--no-progress'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export type GlobalEntry = { readonly oid: string; readonly round: string; readonly merged: string[]; readonly rejected: string[] };

/** The first-parent history of a global branch, newest first, with its fedgit trailers. */
export function globalLog(gitdir: string, ref: string): GlobalEntry[] {
  const out = git(gitdir, 'log', '--first-parent', '--format=%H%x09%(trailers:key=Fedgit-Round,valueonly,separator=)%x09%(trailers:key=Fedgit-Merged,valueonly,separator=|)%x09%(trailers:key=Fedgit-Rejected,valueonly,separator=|)%x1e', ref);
  return out.split('\x1e').map((l) => l.trim()).filter(Boolean).map((line) => {
    const [oid, round, merged, rejected] = line.split('\t');
    return { oid: oid!, round: round ?? '', merged: merged ? merged.split('|') : [], rejected: rejected ? rejected.split('|') : [] };
  });
}

/** Seeded randomness for reproducible chaos. */
export function seeded(seed: number) {
  const random = mulberry32(seed);
  return {
    random,
    between: (lo: number, hi: number) => lo + random() * (hi - lo),
    pick: <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!,
  };
}

/** Counts that the tests print at the end, for the lead to quote. */
export class Tally {
  private readonly counts = new Map<string, number>();
  add(key: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  entries(prefix = ''): Array<[string, number]> {
    return [...this.counts].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
  }
  print(title: string): void {
    console.log(`${title}: ${[...this.counts].map(([k, v]) => `${k}=${v}`).join(', ')}`);
  }
}

export async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}

/** An aggregator driven in this process (one `reconcile()` per call), on the repositories under `repos`. */
export function inProcessAggregator(repos: string, options: { now?: () => number } = {}, registries: Registries) {
  return new AggregatorOperator({
    locate: (edges) => reposUnder(repos, edges),
    open: createOpener(),
    ...registries,
    log: createLogger({ participant: 'aggregator', console: false }),
    ...(options.now ? { now: options.now } : {}),
  });
}

/** Where the read-only commands (audit) find the repositories under `repos`. */
export function whereUnder(repos: string) {
  const where = { locate: (edges: readonly string[]) => reposUnder(repos, edges), open: createOpener() };
  return where;
}
