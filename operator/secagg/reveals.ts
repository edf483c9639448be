/** Checking survivors' reveal records against the recovery request they answer, and turning them into seeds. Pure. */
import type { CommittedPlan } from '../plan/plan.js';
import type { RecoveryRequest, RevealRecord } from '../store/secure-records.js';
import { verificationFailure } from '../trust/sign.js';
import { renderRecoveryStatement, renderRevealStatement } from './statements.js';
import type { RevealedSeed } from './secure-sum.js';

/** Why a reveal cannot be used for the request, or null: it must come from a survivor and hold exactly one seed per dropped edge, signed when the plan lists keys. */
export function revealProblem(plan: CommittedPlan, request: RecoveryRequest, reveal: RevealRecord): string | null {
  if (reveal.request !== request.oid) return 'answers another recovery request';
  if (!request.survivors.some((s) => s.edge === reveal.edge)) return `${reveal.edge} is not a survivor of the request`;
  if (reveal.round !== request.round) return `is for round ${reveal.round}, the request for ${request.round}`;
  const named = reveal.seeds.map((s) => s.dropped).sort().join(' ');
  if (named !== [...request.dropped].sort().join(' ')) return `reveals seeds shared with [${named}], the request dropped [${request.dropped.join(' ')}]`;
  const key = plan.plan.edges.find((e) => e.name === reveal.edge)?.publicKey;
  if (!key) return null;
  if (!reveal.signature) return 'unsigned, but the plan requires signed records';
  const statement = renderRevealStatement({ planId: plan.id, round: reveal.round, edge: reveal.edge, request: reveal.request, seeds: reveal.seeds });
  const failure = verificationFailure(statement, reveal.signature, key);
  return failure ? `signature: ${failure}` : null;
}

/** Why an edge must not trust a recovery request, or null: in a plan with an aggregator key, only a request signed with it. */
export function requestProblem(plan: CommittedPlan, request: RecoveryRequest): string | null {
  const key = plan.plan.aggregator?.publicKey;
  if (!key) return null;
  if (!request.signature) return 'the recovery request is unsigned, but the plan lists an aggregator key';
  const failure = verificationFailure(renderRecoveryStatement({ ...request, planId: plan.id }), request.signature, key);
  return failure ? `the recovery request's signature: ${failure}` : null;
}

export function revealedSeeds(reveals: readonly RevealRecord[]): RevealedSeed[] {
  return reveals.flatMap((r) => r.seeds.map((s) => ({ survivor: r.edge, dropped: s.dropped, seed: Buffer.from(s.seedHex, 'hex') })));
}
