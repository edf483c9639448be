/** What every round-overhead benchmark reports: the gaps between global commits, seen by polling the global branch. */
import { listRefs, readRef } from '../operator/git/refs.js';

export type RoundStats = { readonly gaps: readonly number[]; readonly median: number; readonly p95: number; readonly mean: number; readonly min: number; readonly max: number };

export function roundStats(seen: ReadonlyArray<{ at: number }>): RoundStats {
  const gaps = seen.slice(1).map((s, i) => s.at - seen[i]!.at);
  if (gaps.length === 0) throw new Error('no round was observed');
  const sorted = [...gaps].sort((a, b) => a - b);
  const quantile = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const mid = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { gaps, median, p95: quantile(0.95), mean: gaps.reduce((a, b) => a + b, 0) / gaps.length, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

export const describeRounds = (s: RoundStats) =>
  `median ${s.median.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms (${(s.p95 / s.median).toFixed(2)}× median), mean ${s.mean.toFixed(0)} ms, min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)} over ${s.gaps.length} rounds`;

/**
 * Polls the global branch of `gitdir` every 2 ms until `finished` settles; each new commit with
 * the time it was first seen (and whatever `onCommit` measured at that moment).
 */
export async function watchGlobalBranch(gitdir: string, finished: Promise<unknown>, onCommit?: () => Promise<number>): Promise<Array<{ oid: string; at: number; measured?: number }>> {
  const seen: Array<{ oid: string; at: number; measured?: number }> = [];
  let done = false;
  void finished.then(() => (done = true), () => (done = true));
  while (!done) {
    const branch = [...(await listRefs(gitdir, 'refs/heads/fedgit/').catch(() => new Map<string, string>())).keys()][0];
    const oid = branch ? await readRef(gitdir, branch).catch(() => null) : null;
    if (oid && seen[seen.length - 1]?.oid !== oid) seen.push({ oid, at: performance.now(), ...(onCommit ? { measured: await onCommit().catch(() => NaN) } : {}) });
    await new Promise((r) => setTimeout(r, 2));
  }
  return seen;
}

/**
 * What `onCommit` measured (a CPU counter of live processes), per round: from round 1's commit to
 * the one before the final commit, or to the last before the counter fell. Participants exit once
 * they see the final commit, and an exited process's CPU is no longer counted: sampled there, the
 * figure came out at a quarter of the truth (16 edges: 98 against 357-421 ms per round).
 * Start-up and round 0 are left out.
 */
export function measuredPerRound(seen: ReadonlyArray<{ measured?: number }>): number {
  const sampled = seen.map((s, i) => ({ i, value: s.measured })).filter((s) => s.i >= 1 && s.i < seen.length - 1 && Number.isFinite(s.value));
  const fell = sampled.findIndex((s, k) => k > 0 && s.value! < sampled[k - 1]!.value!);
  if (fell > 0) sampled.length = fell;
  const first = sampled[0], last = sampled[sampled.length - 1];
  if (!first || !last || last.i === first.i) return NaN;
  return (last.value! - first.value!) / (last.i - first.i);
}
