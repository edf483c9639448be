/** What an edge should do, decided from what git says (pure, table-tested). */
import type { RejectedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';

/** Updates of its own that the aggregator refused on one head before the edge stops trying that round. */
export const MAX_REFUSED_ATTEMPTS = 3;

export type EdgeObserved = {
  readonly edge: string;
  readonly plan: CommittedPlan | null;
  readonly globalHead: GlobalRecord | null;
  readonly finalTag: string | null;
  /**
   * The edge's recent commits for this plan that it can prove it pushed itself (its signature,
   * or its push journal), newest first. Anything else on its branch is not its update.
   */
  readonly own: readonly EdgeRecord[];
  /** The aggregator's refusals of this edge's updates on the current head. */
  readonly refused: readonly RejectedEntry[];
  /** Training under way in this process (rebuilt as none after a restart). */
  readonly training: { readonly planId: string; readonly base: string } | null;
};

export type EdgeAction =
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'done'; readonly head: GlobalRecord }
  | { readonly kind: 'train'; readonly base: GlobalRecord; readonly round: number }
  | { readonly kind: 'keep-training' }
  | { readonly kind: 'abort'; readonly reason: string };

export function decideEdge(o: EdgeObserved): EdgeAction {
  const { plan, globalHead: head, training } = o;
  if (!plan) return training ? { kind: 'abort', reason: 'the plan disappeared' } : { kind: 'wait', reason: 'no plan yet' };
  if (!plan.plan.edges.some((e) => e.name === o.edge)) {
    return training ? { kind: 'abort', reason: `plan ${plan.plan.name} does not include ${o.edge}` } : { kind: 'wait', reason: `plan ${plan.plan.name} does not include ${o.edge}` };
  }
  if (training && (training.planId !== plan.id || training.base !== head?.oid)) {
    return { kind: 'abort', reason: training.planId !== plan.id ? 'a new plan was committed' : 'the global model moved on' };
  }
  if (!head) return { kind: 'wait', reason: 'waiting for round 0 from the aggregator' };
  if (o.finalTag || head.round >= plan.plan.rounds) return { kind: 'done', head };
  const refused = new Map(o.refused.map((r) => [r.commit, r.reason]));
  const pushed = o.own.filter((r) => r.base === head.oid);
  if (pushed.some((r) => !refused.has(r.oid))) return { kind: 'wait', reason: `round ${head.round + 1} pushed, waiting for the merge` };
  if (pushed.length >= MAX_REFUSED_ATTEMPTS) {
    return { kind: 'wait', reason: `round ${head.round + 1}: the aggregator refused this edge's last ${pushed.length} updates (${refused.get(pushed[0]!.oid)}); not training this round again` };
  }
  if (training) return { kind: 'keep-training' };
  return { kind: 'train', base: head, round: head.round + 1 };
}
