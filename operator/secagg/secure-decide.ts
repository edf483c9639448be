/**
 * What the aggregator does under secure aggregation, on top of decideAggregator (pure,
 * table-tested). A round with every edge merges as usual: the masks cancel. A round whose
 * deadline passed with edges missing cannot simply merge the others — their updates still hold
 * the masks they share with the missing ones — so the aggregator first commits a recovery
 * request naming the missing (dropped) edges and the survivors' updates; once every survivor
 * revealed the seeds it shares with the dropped edges, it merges exactly the survivors named.
 * From the request on, a dropped edge's update is never merged in that round: with the seeds
 * revealed, it would be unmasked for anyone reading git.
 */
import type { AggregatorAction, AggregatorObserved } from '../reconcile/aggregator-decide.js';
import { decideAggregator } from '../reconcile/aggregator-decide.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';
import type { RecoveryRequest, RevealRecord } from '../store/secure-records.js';

export type SecureObserved = {
  /** The head's recovery request, when one was committed (and, in a signed plan, signed by the aggregator). */
  readonly request: RecoveryRequest | null;
  /** The survivors' usable reveal records for that request, by survivor. */
  readonly reveals: ReadonlyMap<string, RevealRecord>;
  /** The survivors' update records named by the request, as read from their repositories (missing: unreadable). */
  readonly survivorRecords: readonly EdgeRecord[];
};

export type SecureAction =
  | AggregatorAction
  | { readonly kind: 'request-recovery'; readonly head: GlobalRecord; readonly survivors: readonly EdgeRecord[]; readonly dropped: readonly string[] };

export function decideSecureAggregator(o: AggregatorObserved, secure: SecureObserved, nowMs: number): SecureAction {
  const action = decideAggregator(o, nowMs);
  if (!o.head || (action.kind !== 'merge' && action.kind !== 'wait')) return action;
  const head = o.head;
  const { request } = secure;
  if (request) {
    const unrevealed = request.survivors.filter((s) => !secure.reveals.has(s.edge)).map((s) => s.edge);
    if (unrevealed.length) return { kind: 'wait', reason: `round ${head.round + 1}: recovery without ${request.dropped.join(', ')}; waiting for the seeds of ${unrevealed.join(', ')}` };
    if (secure.survivorRecords.length !== request.survivors.length) return { kind: 'wait', reason: `round ${head.round + 1}: recovery: not every survivor's update can be read yet` };
    const reveals = request.survivors.map((s) => secure.reveals.get(s.edge)!);
    return { kind: 'merge', head, updates: secure.survivorRecords, rejected: o.recorded, missing: request.dropped, why: 'deadline', recovery: { request, reveals } };
  }
  if (action.kind === 'merge' && action.missing.length > 0) return { kind: 'request-recovery', head, survivors: action.updates, dropped: action.missing };
  return action;
}
