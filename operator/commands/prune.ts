/**
 * `fedgit prune --keep-rounds K`: removes from this machine's LFS stores (the local global and
 * edge repositories, or a participant's mirrors of them) the objects that only rounds older than
 * the newest K global rounds of a plan point to. Git is not touched: commits, refs, trailers and
 * pointers stay, so `log` and `status` read every round and every merge stays attributable; a
 * pruned round's audit fails naming the missing object until it is restored (docs/lfs.md,
 * "Retention").
 *
 * Read (every commit of each repository and the objects it points to), decide (operator/lfs/
 * retention.ts, pure), apply (one unlink per object).
 */
import { UsageError } from '../errors.js';
import { shortId } from '../git/names.js';
import type { Repository } from '../git/repository.js';
import { renderBytes } from '../git/disk-usage.js';
import { readLfsStoreUsage, removeLfsObject, storedLfsObjectBytes, type LfsStoreUsage } from '../lfs/object-store.js';
import { readCommitObjects } from '../lfs/read-commit-objects.js';
import { decideRetention, MIN_KEEP_ROUNDS, oldestKeptRound, type RetentionWindow } from '../lfs/retention.js';
import type { CommittedPlan } from '../plan/plan.js';
import { readGlobalHead } from '../store/federation.js';
import { openForReading, type Where } from './locate.js';
import { renderTable } from './table.js';

export type PruneOptions = { readonly keepRounds: number; readonly dryRun: boolean };

export type RepositoryPrune = {
  readonly location: string;
  /** Removed (with `dryRun`: would be removed). */
  readonly removed: LfsStoreUsage;
  /** Objects only pruned rounds point to that this store did not hold (never downloaded, or pruned before). */
  readonly absent: number;
  /** Objects pruned rounds point to that stay because something else points to them too. */
  readonly shared: number;
  /** What the store holds afterwards (with `dryRun`: would hold). */
  readonly stays: LfsStoreUsage;
  /** A participant's mirror of a server's repository: a pruned object is downloaded again when read, if the server still has it. */
  readonly mirror: boolean;
};

export type PruneReport = {
  readonly plan: CommittedPlan;
  readonly keepRounds: number;
  readonly dryRun: boolean;
  /** The plan's global head round; null before round 0. */
  readonly headRound: number | null;
  readonly repositories: readonly RepositoryPrune[];
};

/** `--keep-rounds`: a whole number, at least MIN_KEEP_ROUNDS. */
export function parseKeepRounds(value: string | number | undefined): number {
  if (value === undefined) throw new UsageError(`prune: how many rounds to keep? give --keep-rounds K (K ≥ ${MIN_KEEP_ROUNDS})`);
  const k = typeof value === 'number' ? value : /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(k)) throw new UsageError(`prune: --keep-rounds takes a whole number of rounds, got '${value}'`);
  if (k < MIN_KEEP_ROUNDS) {
    throw new UsageError(`prune: --keep-rounds ${k} is too few: keep at least ${MIN_KEEP_ROUNDS} rounds, so that the latest merge and the model it started from stay auditable (docs/lfs.md, "Retention")`, { keepRounds: k });
  }
  return k;
}

export async function pruneLfsObjects(where: Where, plan: CommittedPlan, options: PruneOptions): Promise<PruneReport> {
  const keepRounds = parseKeepRounds(options.keepRounds);
  if (!plan.plan.lfs) {
    throw new UsageError(`prune: plan ${plan.plan.name} (${shortId(plan.id)}) keeps its checkpoints as plain git blobs (no \`lfs:\` in the plan): there are no LFS objects to prune, and git objects are never removed; see docs/lfs.md ("Retention") and docs/scale.md ("Storage")`, { plan: plan.id });
  }
  const edges = plan.plan.edges.map((e) => e.name);
  const locations = where.locate(edges);
  const global = await openForReading(where, locations.global, 'the global repository');
  const head = await readGlobalHead(global, plan);
  const report = { plan, keepRounds, dryRun: options.dryRun };
  if (!head) return { ...report, headRound: null, repositories: [] };
  const window: RetentionWindow = { planId: plan.id, headRound: head.round, keepRounds };
  const repositories: RepositoryPrune[] = [await pruneRepository(global, window, options.dryRun)];
  for (const edge of edges) {
    const location = locations.edges[edge];
    // Only stores this machine has: a participant's missing mirror is not made (and filled) here.
    const repo = location ? await where.open.openExisting(location) : null;
    if (!repo) continue;
    await repo.refresh().catch(() => undefined);
    repositories.push(await pruneRepository(repo, window, options.dryRun));
  }
  return { ...report, headRound: head.round, repositories };
}

async function pruneRepository(repo: Repository, window: RetentionWindow, dryRun: boolean): Promise<RepositoryPrune> {
  const decision = decideRetention(await readCommitObjects(repo), window);
  let objects = 0, bytes = 0, absent = 0;
  for (const oid of decision.remove) {
    const removed = dryRun ? await storedLfsObjectBytes(repo.gitdir, oid) : await removeLfsObject(repo.gitdir, oid);
    if (removed === null) absent++;
    else {
      objects++;
      bytes += removed;
    }
  }
  const usage = await readLfsStoreUsage(repo.gitdir);
  const stays = dryRun ? { objects: usage.objects - objects, bytes: usage.bytes - bytes } : usage;
  return { location: repo.location, removed: { objects, bytes }, absent, shared: decision.shared.length, stays, mirror: repo.remote !== undefined };
}

const renderSize = (bytes: number): string => (bytes < 1024 ? `${bytes} bytes` : renderBytes(bytes));
const renderUsage = (u: LfsStoreUsage): string => `${u.objects} object${u.objects === 1 ? '' : 's'}, ${renderSize(u.bytes)}`;
const renderRounds = (from: number, to: number): string => (from === to ? `round ${from}` : `rounds ${from}–${to}`);

export function renderPrune(r: PruneReport): string {
  const title = `plan ${r.plan.plan.name} (${shortId(r.plan.id)})`;
  if (r.headRound === null) return `${title}: no global round yet; nothing to prune`;
  const oldest = oldestKeptRound({ headRound: r.headRound, keepRounds: r.keepRounds });
  if (oldest <= 0) return `${title}: global rounds 0–${r.headRound} are all within the newest ${r.keepRounds} (--keep-rounds ${r.keepRounds}); nothing to prune`;
  const verb = r.dryRun ? 'would remove' : 'removed';
  const lines = [
    `${title}, global round ${r.headRound}: keeping the LFS objects of ${renderRounds(oldest, r.headRound)} (--keep-rounds ${r.keepRounds}); ${r.dryRun ? 'dry run, nothing is removed: ' : ''}${verb} those only ${renderRounds(0, oldest - 1)} point to, from this machine's stores`,
  ];
  const rows = r.repositories.map((p) => [
    p.location,
    renderUsage(p.removed) + (p.absent ? ` (${p.absent} already absent)` : '') + (p.shared ? ` (${p.shared} kept: a kept round or another commit needs them too)` : ''),
    renderUsage(p.stays),
  ]);
  lines.push(renderTable(['repository', verb, r.dryRun ? 'would stay' : 'stays'], rows));
  const sum = (pick: (p: RepositoryPrune) => LfsStoreUsage): LfsStoreUsage =>
    r.repositories.map(pick).reduce((t, u) => ({ objects: t.objects + u.objects, bytes: t.bytes + u.bytes }), { objects: 0, bytes: 0 });
  lines.push(`total: ${verb} ${renderUsage(sum((p) => p.removed))}; ${renderUsage(sum((p) => p.stays))} ${r.dryRun ? 'would stay' : 'stay'}`);
  lines.push('git is untouched (commits, refs, trailers, pointers): fedgit log and status read every round.');
  if (r.repositories.some((p) => !p.mirror)) lines.push(`fedgit audit recomputes ${renderRounds(oldest + 1, r.headRound)} (a merge's audit also reads the model of the round before); an older round's audit fails naming the missing object until its file is restored into lfs/objects (docs/lfs.md, "Retention").`);
  if (r.repositories.some((p) => p.mirror)) lines.push('A mirror downloads a pruned object again from its server when something reads it; the server\'s own store is pruned by its admin (docs/lfs.md).');
  return lines.join('\n');
}
