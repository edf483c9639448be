/**
 * Secure aggregation's records in git: the aggregator's recovery request (global repository, one
 * commit per round that needed one) and each survivor's reveal (its own repository). Both are
 * empty-tree commits whose trailers say everything, so `git log` shows a recovery without fedgit.
 */
import type { Repository, Commit } from '../git/repository.js';
import {
  TRAILER, parseEdgeCommit, parseRevealedSeed, recoveryBranch, renderEdgeCommit, renderMessage, renderRevealedSeed, revealBranch, trailer, trailerAll,
  type EdgeCommitEntry, type RevealedSeedEntry,
} from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { author, type Signer } from './federation.js';
import { NAME_PATTERN } from '../config/names.js';
import { renderRecoveryStatement, renderRevealStatement } from '../secagg/statements.js';

/** How far back either record is read: only the current head's entry matters. */
const RECORD_DEPTH = 64;

export type RecoveryRequest = {
  readonly oid: string;
  readonly round: number;
  readonly base: string;
  readonly dropped: readonly string[];
  readonly survivors: readonly EdgeCommitEntry[];
  readonly signature: string | undefined;
};

export type RevealRecord = {
  readonly oid: string;
  readonly edge: string;
  readonly round: number;
  readonly request: string;
  readonly seeds: readonly RevealedSeedEntry[];
  readonly signature: string | undefined;
};

export function parseRecoveryRequest(c: Commit, planId: string): RecoveryRequest | undefined {
  const round = Number(trailer(c.trailers, TRAILER.round));
  const base = trailer(c.trailers, TRAILER.base);
  if (trailer(c.trailers, TRAILER.plan) !== planId || !Number.isSafeInteger(round) || !base) return undefined;
  const survivors = trailerAll(c.trailers, TRAILER.survivor).map(parseEdgeCommit);
  const dropped = trailerAll(c.trailers, TRAILER.dropped);
  if (survivors.some((s) => s === undefined) || !dropped.every((d) => NAME_PATTERN.test(d))) return undefined;
  return { oid: c.oid, round, base, dropped, survivors: survivors as EdgeCommitEntry[], signature: trailer(c.trailers, TRAILER.signature) };
}

export function parseRevealRecord(c: Commit, planId: string): RevealRecord | undefined {
  const round = Number(trailer(c.trailers, TRAILER.round));
  const edge = trailer(c.trailers, TRAILER.edge);
  const request = trailer(c.trailers, TRAILER.recovery);
  if (trailer(c.trailers, TRAILER.plan) !== planId || !Number.isSafeInteger(round) || !edge || !request || !/^[0-9a-f]{40}$/.test(request)) return undefined;
  const seeds = trailerAll(c.trailers, TRAILER.revealedSeed).map(parseRevealedSeed);
  if (seeds.some((s) => s === undefined)) return undefined;
  return { oid: c.oid, edge, round, request, seeds: seeds as RevealedSeedEntry[], signature: trailer(c.trailers, TRAILER.signature) };
}

/** The recovery requests for the plan's global commit `base`, oldest first (the first trusted one counts). */
export async function readRecoveryRequests(repo: Repository, plan: CommittedPlan, base: string): Promise<RecoveryRequest[]> {
  const head = await repo.readRef(recoveryBranch(plan.plan.name, plan.id));
  if (!head) return [];
  const chain = await repo.firstParentChain(head, () => true, RECORD_DEPTH);
  return chain.map((c) => parseRecoveryRequest(c, plan.id)).filter((r): r is RecoveryRequest => r?.base === base).reverse();
}

export async function commitRecoveryRequest(repo: Repository, input: { plan: CommittedPlan; base: string; round: number; dropped: readonly string[]; survivors: readonly EdgeCommitEntry[]; sign?: Signer }): Promise<string> {
  const { plan } = input;
  const ref = recoveryBranch(plan.plan.name, plan.id);
  const parent = await repo.readRef(ref);
  const trailers: Array<[string, string]> = [
    [TRAILER.plan, plan.id], [TRAILER.round, String(input.round)], [TRAILER.base, input.base],
    ...input.dropped.map((d): [string, string] => [TRAILER.dropped, d]),
    ...input.survivors.map((s): [string, string] => [TRAILER.survivor, renderEdgeCommit(s)]),
  ];
  if (input.sign) trailers.push([TRAILER.signature, input.sign(renderRecoveryStatement({ planId: plan.id, round: input.round, base: input.base, dropped: input.dropped, survivors: input.survivors }))]);
  const oid = await repo.writeCommit({
    files: {},
    parents: parent ? [parent] : [],
    message: renderMessage(`Round ${input.round} of ${plan.plan.name}: recovery without ${input.dropped.join(', ')}; survivors reveal only the seeds they share with ${input.dropped.length === 1 ? 'it' : 'them'}`, trailers),
    author: author('aggregator'),
  });
  await repo.updateRef(ref, oid, parent);
  return oid;
}

/** This repository's reveal for recovery request `request`, or null. */
export async function readReveal(repo: Repository, plan: CommittedPlan, request: string): Promise<RevealRecord | null> {
  const head = await repo.readRef(revealBranch(plan.plan.name, plan.id));
  if (!head) return null;
  const chain = await repo.firstParentChain(head, () => true, RECORD_DEPTH);
  return chain.map((c) => parseRevealRecord(c, plan.id)).find((r) => r?.request === request) ?? null;
}

/** Whether this repository holds any reveal for `round` (an edge reveals at most once per round). */
export async function hasRevealedInRound(repo: Repository, plan: CommittedPlan, round: number): Promise<boolean> {
  const head = await repo.readRef(revealBranch(plan.plan.name, plan.id));
  if (!head) return false;
  const chain = await repo.firstParentChain(head, () => true, RECORD_DEPTH);
  return chain.some((c) => parseRevealRecord(c, plan.id)?.round === round);
}

export async function commitReveal(repo: Repository, input: { plan: CommittedPlan; edge: string; round: number; request: string; seeds: readonly RevealedSeedEntry[]; sign?: Signer }): Promise<string> {
  const { plan } = input;
  const ref = revealBranch(plan.plan.name, plan.id);
  const parent = await repo.readRef(ref);
  const trailers: Array<[string, string]> = [
    [TRAILER.plan, plan.id], [TRAILER.round, String(input.round)], [TRAILER.edge, input.edge], [TRAILER.recovery, input.request],
    ...input.seeds.map((s): [string, string] => [TRAILER.revealedSeed, renderRevealedSeed(s)]),
  ];
  if (input.sign) trailers.push([TRAILER.signature, input.sign(renderRevealStatement({ planId: plan.id, round: input.round, edge: input.edge, request: input.request, seeds: input.seeds }))]);
  const oid = await repo.writeCommit({
    files: {},
    parents: parent ? [parent] : [],
    message: renderMessage(`${input.edge}: round ${input.round} of ${plan.plan.name}, seeds shared with ${input.seeds.map((s) => s.dropped).join(', ')} (recovery)`, trailers),
    author: author(input.edge),
  });
  await repo.updateRef(ref, oid, parent);
  return oid;
}
