/**
 * An edge's part in secure aggregation: masking its update before the push, and answering a
 * recovery request by revealing only the seeds it shares with the dropped edges — once per round,
 * never a seed shared with another survivor, never its own mask.
 */
import type { KeyObject } from 'node:crypto';
import type { Tensors } from '../contracts.js';
import type { WordTensors } from '../checkpoint/safetensors.js';
import type { MaskedEntry, RevealedSeedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import type { EdgeRecord } from '../store/records.js';
import type { RecoveryRequest } from '../store/secure-records.js';
import { parseAgreementKey, renderAgreementKey } from './agreement-keys.js';
import { maskUpdate } from './masked-update.js';
import { pairSeed } from './pair-masks.js';
import { maskingWeight } from './secure-merge.js';

export type SecureEdgeObserved = {
  readonly edge: string;
  /** The head's trusted recovery request, or null. */
  readonly request: RecoveryRequest | null;
  /** Whether this edge already revealed seeds in the request's round (for any request). */
  readonly revealedThisRound: boolean;
  /** This edge's provably own commits (edge-decide's `own`). */
  readonly own: readonly EdgeRecord[];
};

export type SecureEdgeAction = { readonly kind: 'reveal'; readonly request: RecoveryRequest } | { readonly kind: 'sit-out'; readonly reason: string } | null;

/** Pure: whether this edge must reveal now, must not train or push this round, or neither. */
export function decideSecureEdge(o: SecureEdgeObserved): SecureEdgeAction {
  const r = o.request;
  if (!r) return null;
  if (r.dropped.includes(o.edge)) return { kind: 'sit-out', reason: `round ${r.round}: the aggregator recovered the round without this edge; its update for this round must never be pushed (it would be unmasked)` };
  const mine = r.survivors.find((s) => s.edge === o.edge);
  if (!mine || o.revealedThisRound) return null;
  if (!o.own.some((c) => c.oid === mine.commit)) return { kind: 'sit-out', reason: `round ${r.round}: the recovery request names ${mine.commit.slice(0, 8)} as this edge's update, which it cannot prove it pushed; revealing nothing` };
  if (r.dropped.some((d) => r.survivors.some((s) => s.edge === d))) return { kind: 'sit-out', reason: `round ${r.round}: the recovery request names an edge both dropped and surviving; revealing nothing` };
  return { kind: 'reveal', request: r };
}

/** Why this edge's agreement key does not fit the plan, or null (also null when the plan does not aggregate securely). */
export function agreementKeyProblem(plan: CommittedPlan, edge: string, key: KeyObject | undefined): string | null {
  if (!plan.plan.secureAggregation) return null;
  const listed = plan.plan.edges.find((e) => e.name === edge)?.agreementKey;
  if (!listed) return `plan ${plan.plan.name} aggregates securely but lists no agreementKey for ${edge}; not training`;
  if (!key) return `plan ${plan.plan.name} aggregates securely but this edge has no agreement key (participant config 'agreementKey', made by fedgit keygen --agreement-out); not training`;
  const own = renderAgreementKey(key);
  if (own !== listed) return `this edge's agreement key (${own.slice(0, 19)}…) is not the one plan ${plan.plan.name} lists for ${edge} (${listed.slice(0, 19)}…); not training`;
  return null;
}

function seedWith(plan: CommittedPlan, key: KeyObject, self: string, peer: string, round: number): Uint8Array {
  const listed = plan.plan.edges.find((e) => e.name === peer)?.agreementKey;
  if (!listed) throw new RangeError(`plan ${plan.plan.name} lists no agreementKey for ${peer}`);
  return pairSeed(key, parseAgreementKey(listed), { planId: plan.id, round, self, peer });
}

/** The masked update this edge pushes for `round`: its weighted delta from `previous` plus the masks of its pairs with every other edge of the plan. */
export function maskForPush(plan: CommittedPlan, key: KeyObject, o: { edge: string; round: number; tensors: Tensors; previous: Tensors; datasetSize: number }): { tensors: WordTensors; entry: MaskedEntry } {
  const fractionalBits = plan.plan.secureAggregation!.fractionalBits;
  const seeds = plan.plan.edges.filter((e) => e.name !== o.edge).map((e) => ({ peer: e.name, seed: seedWith(plan, key, o.edge, e.name, o.round) }));
  const { masked, clipped } = maskUpdate({ edge: o.edge, tensors: o.tensors, previous: o.previous, weight: maskingWeight(plan.plan, o.edge, o.datasetSize), fractionalBits, seeds });
  return { tensors: masked, entry: { fractionalBits, clipped } };
}

/** The seeds this edge shares with the request's dropped edges, and nothing else. */
export function seedsToReveal(plan: CommittedPlan, key: KeyObject, edge: string, request: RecoveryRequest): RevealedSeedEntry[] {
  return request.dropped.filter((d) => d !== edge).map((d) => ({ dropped: d, seedHex: Buffer.from(seedWith(plan, key, edge, d, request.round)).toString('hex') }));
}

