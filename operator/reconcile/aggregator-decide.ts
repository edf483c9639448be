/** What the aggregator should do, decided from what git says and the clock (pure, table-tested). */
import type { RejectedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';
import { budgetAllowsRound } from '../privacy/accounting.js';
import type { RecoveryRequest, RevealRecord } from '../store/secure-records.js';

export type AggregatorObserved = {
  readonly plan: CommittedPlan | null;
  readonly head: GlobalRecord | null;
  readonly finalTag: string | null;
  /**
   * Per edge of the plan: its newest commit on the head that passed every check, or null.
   * Anything based elsewhere is stale; anything that failed a check counts as not pushed.
   */
  readonly candidates: ReadonlyMap<string, EdgeRecord | null>;
  /** Commits on the head that failed a check, as seen now (newer than each edge's valid one). */
  readonly rejected: readonly RejectedEntry[];
  /** What the rejection record in the global repository already holds for the head. */
  readonly recorded: readonly RejectedEntry[];
};

export type AggregatorAction =
  | { readonly kind: 'wait'; readonly reason: string; readonly untilMs?: number }
  | { readonly kind: 'init' }
  | { readonly kind: 'record-rejections'; readonly head: GlobalRecord; readonly entries: readonly RejectedEntry[] }
  | {
    readonly kind: 'merge'; readonly head: GlobalRecord; readonly updates: readonly EdgeRecord[]; readonly rejected: readonly RejectedEntry[]; readonly missing: readonly string[]; readonly why: 'all-edges' | 'deadline';
    /** Secure aggregation after a dropout: the request and the survivors' reveals the merge uses. */
    readonly recovery?: { readonly request: RecoveryRequest; readonly reveals: readonly RevealRecord[] };
  }
  /** `budget`: a privacy plan stops before its rounds are done, because the next round would exceed targetEpsilon. */
  | { readonly kind: 'tag'; readonly head: GlobalRecord; readonly budget?: string }
  | { readonly kind: 'done'; readonly head: GlobalRecord };

export function deadlineOf(head: GlobalRecord, plan: CommittedPlan): number {
  return head.timeMs + plan.plan.roundDeadlineMs;
}

export function decideAggregator(o: AggregatorObserved, nowMs: number): AggregatorAction {
  const { plan, head } = o;
  if (!plan) return { kind: 'wait', reason: 'no plan yet' };
  if (!head) return { kind: 'init' };
  if (head.round >= plan.plan.rounds) return o.finalTag === head.oid ? { kind: 'done', head } : { kind: 'tag', head };
  const privacy = plan.plan.privacy;
  if (privacy && !budgetAllowsRound(privacy, head.round)) {
    if (o.finalTag === head.oid) return { kind: 'done', head };
    return { kind: 'tag', head, budget: `privacy budget reached: round ${head.round + 1} would take ε past targetEpsilon ${privacy.targetEpsilon} at δ ${privacy.delta}; stopping after ${head.round} of ${plan.plan.rounds} rounds` };
  }
  // Refusals are recorded before anything else, so everyone sees them while the round is open.
  const known = new Set(o.recorded.map((r) => r.commit));
  const unrecorded = o.rejected.filter((r) => !known.has(r.commit));
  if (unrecorded.length > 0) return { kind: 'record-rejections', head, entries: unrecorded };
  const updates: EdgeRecord[] = [];
  const missing: string[] = [];
  for (const { name } of plan.plan.edges) {
    const candidate = o.candidates.get(name);
    if (candidate && candidate.base === head.oid && candidate.round === head.round + 1) updates.push(candidate);
    else missing.push(name);
  }
  const merge = (why: 'all-edges' | 'deadline'): AggregatorAction => ({ kind: 'merge', head, updates, rejected: o.recorded, missing, why });
  if (missing.length === 0) return merge('all-edges');
  const deadline = deadlineOf(head, plan);
  if (nowMs >= deadline) {
    if (updates.length >= plan.plan.minEdges) return merge('deadline');
    return { kind: 'wait', reason: `deadline passed with ${updates.length} of the ${plan.plan.minEdges} valid updates needed; waiting for ${namesOf(missing)}` };
  }
  const refused = missing.filter((edge) => o.recorded.some((r) => r.edge === edge));
  return {
    kind: 'wait',
    reason: `round ${head.round + 1}: ${updates.length}/${plan.plan.edges.length} valid updates, waiting for ${namesOf(missing)}${refused.length ? ` (refused so far: ${namesOf(refused)})` : ''}`,
    untilMs: deadline,
  };
}

const NAMES_SHOWN = 8;

/**
 * Edge names for a log line: all of them up to NAMES_SHOWN, else the first ones and how many more.
 * The wait line changes whenever an update arrives (it is logged at most once a second, see
 * WaitLine), and a line of 100 names helps nobody.
 */
export function namesOf(edges: readonly string[]): string {
  if (edges.length <= NAMES_SHOWN) return edges.join(', ');
  return `${edges.length} edges (${edges.slice(0, NAMES_SHOWN - 2).join(', ')} and ${edges.length - (NAMES_SHOWN - 2)} more)`;
}
