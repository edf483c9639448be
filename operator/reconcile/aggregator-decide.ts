/** What the aggregator should do, decided from what git says and the clock (pure, table-tested). */
import type { CommittedPlan } from '../plan/plan.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';

export type AggregatorObserved = {
  readonly plan: CommittedPlan | null;
  readonly head: GlobalRecord | null;
  readonly finalTag: string | null;
  /** Per edge of the plan: its newest commit whose base is the head (anything else is stale), or null. */
  readonly candidates: ReadonlyMap<string, EdgeRecord | null>;
};

export type AggregatorAction =
  | { readonly kind: 'wait'; readonly reason: string; readonly untilMs?: number }
  | { readonly kind: 'init' }
  | { readonly kind: 'merge'; readonly head: GlobalRecord; readonly updates: readonly EdgeRecord[]; readonly missing: readonly string[]; readonly why: 'all-edges' | 'deadline' }
  | { readonly kind: 'tag'; readonly head: GlobalRecord }
  | { readonly kind: 'done'; readonly head: GlobalRecord };

export function deadlineOf(head: GlobalRecord, plan: CommittedPlan): number {
  return head.timeMs + plan.plan.roundDeadlineMs;
}

export function decideAggregator(o: AggregatorObserved, nowMs: number): AggregatorAction {
  const { plan, head } = o;
  if (!plan) return { kind: 'wait', reason: 'no plan yet' };
  if (!head) return { kind: 'init' };
  if (head.round >= plan.plan.rounds) return o.finalTag === head.oid ? { kind: 'done', head } : { kind: 'tag', head };
  const updates: EdgeRecord[] = [];
  const missing: string[] = [];
  for (const { name } of plan.plan.edges) {
    const candidate = o.candidates.get(name);
    if (candidate && candidate.base === head.oid && candidate.round === head.round + 1) updates.push(candidate);
    else missing.push(name);
  }
  if (missing.length === 0) return { kind: 'merge', head, updates, missing, why: 'all-edges' };
  const deadline = deadlineOf(head, plan);
  if (nowMs >= deadline) {
    if (updates.length >= plan.plan.minEdges) return { kind: 'merge', head, updates, missing, why: 'deadline' };
    return { kind: 'wait', reason: `deadline passed with ${updates.length} of the ${plan.plan.minEdges} updates needed; waiting for ${missing.join(', ')}` };
  }
  return { kind: 'wait', reason: `round ${head.round + 1}: ${updates.length}/${plan.plan.edges.length} updates, waiting for ${missing.join(', ')}`, untilMs: deadline };
}
