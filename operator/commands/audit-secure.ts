/**
 * `fedgit audit` of a secure merge (docs/secure-aggregation.md): every masked update it names
 * passes the checks a masked update can pass; without a recovery, every edge of the plan is in
 * it (or the masks would not cancel) and no recovery request exists for its base; with one, the
 * request is the aggregator's, names exactly the merged updates, and every survivor's reveal
 * answers it with exactly the dropped edges' seeds. Then the sum, the unmasking, the division
 * and the strategy are recomputed from git and compared with the stored weights bit for bit.
 */
import { shortId } from '../git/names.js';
import type { Repository } from '../git/repository.js';
import { checkpointBytes, readWeights } from '../store/federation.js';
import type { GlobalRecord } from '../store/records.js';
import { parseRecoveryRequest, parseRevealRecord, readRecoveryRequests, type RecoveryRequest, type RevealRecord } from '../store/secure-records.js';
import { loadMaskedUpdate, type MaskedUpdate } from '../secagg/load-masked.js';
import { computeSecureMerge } from '../secagg/secure-merge.js';
import { requestProblem, revealedSeeds, revealProblem } from '../secagg/reveals.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { auditState, auditUpdate, checkMergeMetrics, previousState, type Audit } from './audit.js';

export async function auditSecureMerge(audit: Audit, parent: GlobalRecord | undefined): Promise<void> {
  const { where, record, plan, check } = audit;
  const locations = where.locate(plan.plan.edges.map((e) => e.name));
  const updates: MaskedUpdate[] = [];
  for (const m of record.merged) {
    const update = await auditUpdate(audit, m, locations.edges[m.edge], loadMaskedUpdate);
    if (update) updates.push(update);
  }
  if (updates.length !== record.merged.length || !parent) return;
  const reveals = record.recovery ? await auditRecovery(audit, parent) : await auditNoRecovery(audit, parent);
  if (!reveals) return;
  const strategy = audit.registries.strategies.get(plan.plan.strategy, plan.plan.strategyOptions);
  const state = strategy.step ? await previousState(audit, parent) : null;
  if (state === undefined) return;
  const expected = computeSecureMerge(plan.plan, strategy, updates, revealedSeeds(reveals), await readWeights(audit.global, parent.oid), state);
  const ordered = [...record.merged].sort((a, b) => (a.edge < b.edge ? -1 : a.edge > b.edge ? 1 : 0));
  check(ordered.every((m, i) => m.weight === expected.weights[i]), `merge weights ${record.merged.map((m) => m.weight).join(', ')} are the dataset-size weights each edge applied before masking`);
  const recomputed = checkpointBytes(expected.tensors, audit.meta);
  const how = record.recovery ? `, with the masks shared with ${reveals[0]?.seeds.map((s) => s.dropped).join(', ')} removed by ${reveals.length} revealed seed record(s)` : '';
  check(recomputed.equals(audit.stored), `recomputed secure ${strategy.name} (sum of ${updates.length} masked updates mod 2^64${how}, fixed point 2^-${plan.plan.secureAggregation!.fractionalBits}) matches the stored weights bit for bit (${audit.stored.length} bytes)`);
  await auditState(audit, strategy.name, expected);
  await checkMergeMetrics(audit);
}

/** A merge without recovery: every edge in it, and no recovery started for its base (a dropped edge's update must never be merged). */
async function auditNoRecovery({ global, record, plan, check }: Audit, parent: GlobalRecord): Promise<RevealRecord[] | null> {
  const missing = plan.plan.edges.map((e) => e.name).filter((e) => !record.merged.some((m) => m.edge === e));
  const all = check(missing.length === 0, `every edge of the plan is merged, so the pairwise masks cancel${missing.length ? `: missing ${missing.join(', ')} and no recovery named` : ''}`);
  const started = (await readRecoveryRequests(global, plan, parent.oid)).filter((r) => requestProblem(plan, r) === null);
  const none = check(started.length === 0, started.length ? `no recovery was started for ${shortId(parent.oid)}: request ${shortId(started[0]!.oid)} dropped ${started[0]!.dropped.join(', ')}, whose update must then never be merged` : `no recovery was started for round ${record.round}`);
  return all && none ? [] : null;
}

async function auditRecovery(audit: Audit, parent: GlobalRecord): Promise<RevealRecord[] | null> {
  const { global, record, plan, check } = audit;
  const { request: requestOid, reveals: named } = record.recovery!;
  const request = await readCommitAs(global, requestOid, (c) => parseRecoveryRequest(c, plan.id));
  if (!check(request !== undefined, `recovery request ${shortId(requestOid)} is a recovery commit of this plan in the global repository`) || !request) return null;
  const problem = requestProblem(plan, request);
  check(problem === null, `recovery request ${shortId(request.oid)} is the aggregator's${problem ? `: ${problem}` : ''}`);
  check(request.base === parent.oid && request.round === record.round, `recovery request ${shortId(request.oid)} is for round ${record.round} from ${shortId(parent.oid)}`);
  const first = (await readRecoveryRequests(global, plan, parent.oid)).find((r) => requestProblem(plan, r) === null);
  check(first?.oid === request.oid, `it is the first recovery request for ${shortId(parent.oid)}`);
  const same = sameSurvivors(request, record);
  check(same, `the merge holds exactly the request's survivors (${request.survivors.map((s) => `${s.edge}@${shortId(s.commit)}`).join(', ')}), none of the dropped ${request.dropped.join(', ')}`);
  const reveals = await readReveals(audit, request, named);
  return same && reveals ? reveals : null;
}

function sameSurvivors(request: RecoveryRequest, record: GlobalRecord): boolean {
  const render = (list: ReadonlyArray<{ edge: string; commit: string }>) => list.map((e) => `${e.edge} ${e.commit}`).sort().join('\n');
  return render(request.survivors) === render(record.merged) && !request.dropped.some((d) => record.merged.some((m) => m.edge === d));
}

async function readReveals(audit: Audit, request: RecoveryRequest, named: ReadonlyArray<{ edge: string; commit: string }>): Promise<RevealRecord[] | null> {
  const { where, plan, check } = audit;
  const locations = where.locate(plan.plan.edges.map((e) => e.name));
  const reveals: RevealRecord[] = [];
  for (const s of request.survivors) {
    const entry = named.find((n) => n.edge === s.edge);
    const repo = entry && locations.edges[s.edge] ? await where.open.open(locations.edges[s.edge]!).catch(() => null) : null;
    if (!check(entry !== undefined && repo !== null, `the merge names a reachable reveal record of survivor ${s.edge}`) || !entry || !repo) return null;
    await repo.refresh();
    const reveal = await readCommitAs(repo, entry.commit, (c) => parseRevealRecord(c, plan.id));
    const problem = reveal ? revealProblem(plan, request, reveal) : 'not a reveal record of this plan';
    const signed = plan.plan.edges.find((e) => e.name === s.edge)?.publicKey ? ', signed by its key' : '';
    if (!check(problem === null && reveal?.edge === s.edge, `${s.edge}'s reveal ${shortId(entry.commit)} answers the request with exactly the seeds shared with ${request.dropped.join(', ')}${signed}${problem ? `: ${escapeUntrusted(problem, 300)}` : ''}`) || !reveal) return null;
    reveals.push(reveal);
  }
  return reveals;
}

async function readCommitAs<T>(repo: Repository, oid: string, parse: (c: Awaited<ReturnType<Repository['readCommit']>>) => T | undefined): Promise<T | undefined> {
  try {
    return parse(await repo.readCommit(oid));
  } catch {
    return undefined;
  }
}

