/**
 * Which LFS objects a retention policy may remove from one repository's store (docs/lfs.md,
 * "Retention"): pure, from what the repository's commits say (plan, round, pointers), so it is
 * tested with tables and no file system.
 *
 * The newest `keepRounds` global rounds of a plan are kept: every object a commit of those rounds
 * points to stays (the global checkpoint and optimiser state of the round, the edge updates pushed
 * for it). An object is removable only when every commit that points to it is a round of the same
 * plan older than that window. Anything else that points to it keeps it: a kept round, a round
 * not merged yet, another plan, a commit without fedgit trailers.
 */

/** The latest merge and the model it started from: fewer, and the latest merge could not be recomputed. */
export const MIN_KEEP_ROUNDS = 2;

/** What one commit says about retention: its plan and round trailers (when it has exactly one of each) and its LFS objects. */
export type CommitObjects = {
  readonly commit: string;
  readonly planId: string | undefined;
  readonly round: number | undefined;
  readonly oids: readonly string[];
};

export type RetentionWindow = {
  readonly planId: string;
  /** The round of the plan's global head. */
  readonly headRound: number;
  readonly keepRounds: number;
};

/** The oldest round whose objects stay; rounds below it are pruned (none when it is 0 or less). */
export const oldestKeptRound = (w: Pick<RetentionWindow, 'headRound' | 'keepRounds'>): number => w.headRound - w.keepRounds + 1;

export const isPrunedRound = (w: RetentionWindow, c: Pick<CommitObjects, 'planId' | 'round'>): boolean =>
  c.planId === w.planId && c.round !== undefined && c.round < oldestKeptRound(w);

export type RetentionDecision = {
  /** Objects only pruned rounds point to, sorted. */
  readonly remove: readonly string[];
  /** Objects pruned rounds point to that something else still needs, sorted. */
  readonly shared: readonly string[];
};

export function decideRetention(commits: readonly CommitObjects[], window: RetentionWindow): RetentionDecision {
  if (!Number.isInteger(window.keepRounds) || window.keepRounds < MIN_KEEP_ROUNDS) throw new RangeError(`keepRounds ${window.keepRounds} is below ${MIN_KEEP_ROUNDS}`);
  const old = new Set<string>();
  const needed = new Set<string>();
  for (const c of commits) for (const oid of c.oids) (isPrunedRound(window, c) ? old : needed).add(oid);
  const remove = [...old].filter((oid) => !needed.has(oid)).sort();
  const shared = [...old].filter((oid) => needed.has(oid)).sort();
  return { remove, shared };
}
