/** The aggregator's reads for secure aggregation: the head's recovery request, the survivors' reveals and updates. */
import type { Log } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import { shortId } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { parseEdgeRecord, type EdgeRecord, type GlobalRecord } from '../store/records.js';
import { readRecoveryRequests, readReveal, type RecoveryRequest, type RevealRecord } from '../store/secure-records.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { requestProblem, revealProblem } from './reveals.js';
import type { SecureObserved } from './secure-decide.js';

/** The first recovery request for `base` that the plan's keys let anyone trust and that names only the plan's edges, each once, or null. */
export async function trustedRecoveryRequest(global: Repository, plan: CommittedPlan, base: string): Promise<RecoveryRequest | null> {
  return (await readRecoveryRequests(global, plan, base)).find((r) => requestProblem(plan, r) === null && r.round > 0 && namesPlanEdges(plan, r)) ?? null;
}

function namesPlanEdges(plan: CommittedPlan, r: RecoveryRequest): boolean {
  const names = [...r.dropped, ...r.survivors.map((s) => s.edge)];
  return new Set(names).size === names.length && names.every((n) => plan.plan.edges.some((e) => e.name === n)) && r.dropped.length > 0;
}

export async function observeSecure(global: Repository, plan: CommittedPlan, head: GlobalRecord, edgeRepo: (edge: string) => Promise<Repository | null>, log: Log): Promise<SecureObserved> {
  const request = await trustedRecoveryRequest(global, plan, head.oid);
  const reveals = new Map<string, RevealRecord>();
  const survivorRecords: EdgeRecord[] = [];
  if (!request) return { request, reveals, survivorRecords };
  for (const s of request.survivors) {
    const repo = await edgeRepo(s.edge);
    if (!repo) continue;
    try {
      const record = parseEdgeRecord(await repo.readCommit(s.commit));
      if (record && record.edge === s.edge) survivorRecords.push(record);
      const reveal = await readReveal(repo, plan, request.oid);
      const problem = reveal ? revealProblem(plan, request, reveal) : 'none yet';
      if (reveal && problem) log.warn(`round ${request.round}: reveal ${shortId(reveal.oid)} of ${s.edge} is not usable: ${escapeUntrusted(problem, 300)}`, { edge: s.edge });
      if (reveal && !problem) reveals.set(s.edge, reveal);
    } catch (e) {
      log.warn(`round ${request.round}: cannot read the recovery records of ${s.edge}: ${escapeUntrusted((e as Error).message, 300)}`, { edge: s.edge });
    }
  }
  return { request, reveals, survivorRecords };
}
