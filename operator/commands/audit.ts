/**
 * `fedgit audit <commit>`: recomputes a merged checkpoint from the edge
 * commits its trailers name and checks it matches the stored weights bit for bit
 * (and, for a server optimiser, that the stored state is the one the step leaves,
 * recomputed from the previous commit's state).
 */
import type { StrategyState, TensorSpec } from '../contracts.js';
import { auditSecureMerge } from './audit-secure.js';
import { shortId, WEIGHTS_FILE, PLAN_FILE, type ClippedEntry, type MergedEntry } from '../git/names.js';
import type { Repository } from '../git/repository.js';
import { parsePlan, type CommittedPlan } from '../plan/plan.js';
import { checkpointBytes, globalStatementOf, readMetrics, readWeights } from '../store/federation.js';
import type { Tensors } from '../contracts.js';
import { verificationFailure } from '../trust/sign.js';
import { fingerprint } from '../trust/keys.js';
import { loadUpdate } from '../store/load-update.js';
import { describeBounds } from '../reconcile/influence.js';
import { streamMerge, type Merge, type UpdateSource } from '../reconcile/merge.js';
import { memoryReleaser } from '../runtime/release-memory.js';
import { STATE_FILE, parseState, readStateAfter, readStateFile, stateBytes } from '../store/strategy-state.js';
import { parseEdgeRecord, parseGlobalRecord, type EdgeRecord, type GlobalRecord } from '../store/records.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { LfsObjectMissing } from '../errors.js';
import type { Registries } from '../runtime/registries.js';
import { openForReading, type Where } from './locate.js';
import { deriveNoiseSeed, noiseCommitment, SEED_BYTES } from '../privacy/gaussian-noise.js';
import { privacyTrailerValues } from '../privacy/accounting.js';

/**
 * How much of a failure's reason an audit line keeps: enough for a missing LFS object's whole
 * message (file, commit, oid, where the file belongs, what to do), still bounded for reasons built
 * from what an edge wrote.
 */
const REASON_CHARS = 1000;

export type AuditCheck = { readonly ok: boolean; readonly what: string };
export type AuditReport = { readonly ok: boolean; readonly commit: string; readonly round: number | undefined; readonly checks: readonly AuditCheck[] };

/** What every step of one audit needs: the commit, its plan, the stored weights, and the list of checks so far. */
export type Audit = {
  readonly where: Where;
  readonly registries: Registries;
  readonly global: Repository;
  readonly oid: string;
  readonly record: GlobalRecord;
  readonly plan: CommittedPlan;
  readonly stored: Buffer;
  readonly meta: { planId: string; round: number; architecture: string };
  /** The round's DP noise seed, when the auditor was given it (a DP merge is then recomputed bit for bit). */
  readonly noiseSeed?: Uint8Array;
  /** Records a check; returns whether it passed. */
  readonly check: (ok: boolean, what: string) => boolean;
};

/**
 * What lets audit recompute a DP merge's noise: the round's seed (an auditor given one round), or
 * the aggregator's secret (its operator, who can derive every round's seed).
 */
export type AuditOptions = { readonly noiseSeed?: Uint8Array; readonly noiseSecret?: Uint8Array };

export async function auditCommit(where: Where, registries: Registries, spec: string, options: AuditOptions = {}): Promise<AuditReport> {
  const checks: AuditCheck[] = [];
  const check = (ok: boolean, what: string) => (checks.push({ ok, what }), ok);
  const global = await openForReading(where, where.locate([]).global, 'the global repository');
  const oid = await global.resolve(spec);
  const report = (round?: number): AuditReport => ({ ok: checks.length > 0 && checks.every((c) => c.ok), commit: oid, round, checks });
  const record = parseGlobalRecord(await global.readCommit(oid));
  if (!check(record !== undefined, `${shortId(oid)} is a fedgit global commit`) || !record) return report();

  const plan = await readAuditedPlan(where, registries, record.planId);
  const { app } = plan.plan;
  const architecture = registries.apps.architecture(app.id, app.options);
  check(record.architecture === architecture, `architecture ${record.architecture} is the plan's ${architecture}`);
  try {
    const audit: Audit = { where, registries, global, oid, record, plan, stored: await global.readFile(oid, WEIGHTS_FILE), meta: { planId: plan.id, round: record.round, architecture }, check, ...noiseSeedOption(options, plan.id, record.round) };
    checkAggregatorSignature(audit);
    await (record.round === 0 ? auditRoundZero(audit) : auditMerge(audit));
  } catch (e) {
    // A checkpoint the recomputation needs is gone (pruned by a retention policy): the audit fails
    // and says which object, never passes or blames the merge. Updates that are missing are already
    // listed by their own check; this is the merge's own weights or state, the previous model, or a
    // pretrained source.
    if (!(e instanceof LfsObjectMissing)) throw e;
    check(false, `every checkpoint the audit reads is stored: ${escapeUntrusted(e.message, REASON_CHARS)}`);
  }
  return report(record.round);
}

function noiseSeedOption(options: AuditOptions, planId: string, round: number): { noiseSeed?: Uint8Array } {
  if (options.noiseSeed) return { noiseSeed: options.noiseSeed };
  return options.noiseSecret ? { noiseSeed: deriveNoiseSeed(options.noiseSecret, planId, round) } : {};
}

async function readAuditedPlan(where: Where, registries: Registries, planId: string): Promise<CommittedPlan> {
  const planRepo = await openForReading(where, where.locate([]).plan, 'the plan repository');
  const text = (await planRepo.readFile(planId, PLAN_FILE)).toString('utf8');
  return { id: planId, text, plan: parsePlan(text, `${PLAN_FILE}@${shortId(planId)}`, { apps: registries.apps }) };
}

function checkAggregatorSignature({ plan, record, stored, check }: Audit): void {
  const aggregatorKey = plan.plan.aggregator?.publicKey;
  if (!aggregatorKey) return;
  const failure = record.signature ? verificationFailure(globalStatementOf(record, stored), record.signature, aggregatorKey) : 'no signature';
  check(!failure, `merge signed by the plan's aggregator key (${fingerprint(aggregatorKey)})${failure ? `: ${failure}` : ''}`);
}

/** Round 0 holds the pretrained weights it names, or the app's initial weights for the plan's seed. */
async function auditRoundZero({ registries, global, record, plan, stored, meta, check }: Audit): Promise<void> {
  const { app, seed } = plan.plan;
  if (record.source?.startsWith('pretrained ')) {
    const source = record.source.slice('pretrained '.length);
    const expected = checkpointBytes(await readWeights(global, source), meta);
    check(expected.equals(stored), `round 0 holds the pretrained weights of ${shortId(source)}`);
  } else {
    const expected = checkpointBytes(await registries.apps.initialWeights(app.id, app.options, seed), meta);
    check(expected.equals(stored), `round 0 equals ${app.id}'s initial weights for seed ${seed}`);
  }
}

/** A merge: its parent, every update it names, and the recomputed merge, weights and metrics. */
async function auditMerge(audit: Audit): Promise<void> {
  const { where, global, record, plan, check } = audit;
  const parent = record.parent ? parseGlobalRecord(await global.readCommit(record.parent)) : undefined;
  check(parent !== undefined && parent.planId === plan.id && parent.round === record.round - 1, `parent ${record.parent ? shortId(record.parent) : '(none)'} is round ${record.round - 1} of the same plan`);
  check(record.merged.length >= plan.plan.minEdges, `${record.merged.length} updates merged, plan needs at least ${plan.plan.minEdges}`);
  check(record.strategy === undefined || record.strategy === plan.plan.strategy, `strategy ${record.strategy ?? '(none)'} is the plan's (${plan.plan.strategy})`);
  if (plan.plan.secureAggregation) return auditSecureMerge(audit, parent);
  const locations = where.locate(record.merged.map((m) => m.edge));
  const sources: AuditedSource[] = [];
  for (const m of record.merged) {
    const source = await auditEdgeCommit(audit, m, locations.edges[m.edge]);
    if (source) sources.push(source);
  }
  try {
    if (sources.length === record.merged.length && parent) await auditMergeOf(audit, sources, parent);
  } finally {
    // Paths that stop before the merge still list whether each update passes its checks.
    for (const source of sources) if (!source.attempted) await source.load();
  }
}

async function auditMergeOf(audit: Audit, sources: readonly AuditedSource[], parent: GlobalRecord): Promise<void> {
  const { registries, global, record, plan, stored, meta, check } = audit;
  const strategy = registries.strategies.get(plan.plan.strategy, plan.plan.strategyOptions);
  if (plan.plan.privacy || record.privacy) {
    await auditDpMerge(audit, sources, parent);
    return checkMergeMetrics(audit);
  }
  const state = strategy.step ? await previousState(audit, parent) : null;
  if (state === undefined) return;
  const expected = await mergeAll(sources, (merged) => streamMerge(plan.plan, strategy, merged, () => readWeights(global, parent.oid), { state, released: memoryReleaser() }));
  if (!expected) return;
  checkClipping(audit, expected);
  const expectedWeight = (edge: string) => expected.weights[expected.edges.indexOf(edge)];
  check(record.merged.every((m) => m.weight === expectedWeight(m.edge)), `merge weights ${record.merged.map((m) => m.weight).join(', ')} are ${strategy.name}'s under the plan's bounds (${describeBounds(plan.plan)})`);
  const recomputed = checkpointBytes(expected.tensors, meta);
  check(recomputed.equals(stored), `recomputed ${strategy.name} over ${sources.length} updates matches the stored weights bit for bit (${stored.length} bytes)`);
  await auditState(audit, strategy.name, expected);
  await checkMergeMetrics(audit);
}

/** A merged update whose commit passed its checks; `load` reads its weights and records whether they pass every check. */
type AuditedSource = UpdateSource & { attempted: boolean };

/**
 * Runs the merge over the sources (each update read once, when the merge reaches it); when one
 * fails its checks the merge stops, and the rest are still read so that every failure is listed.
 */
async function mergeAll(sources: readonly AuditedSource[], merge: (sources: readonly UpdateSource[]) => Promise<Merge | null>): Promise<Merge | null> {
  const expected = await merge(sources);
  for (const source of sources) if (!source.attempted) await source.load();
  return expected;
}

export async function checkMergeMetrics({ global, oid, record, check }: Audit): Promise<void> {
  const metricsProblem = mergeMetricsProblem(await readMetrics(global, oid), record);
  check(metricsProblem === null, `metrics.json of the merge lists exactly the merged updates${metricsProblem ? `: ${metricsProblem}` : ''}`);
}

/**
 * The clipping the merge records is the recomputed one: the same edges, each with the same original
 * norm (exactly, as float64), none hidden, none invented, none on a plan without `clip`.
 */
function checkClipping({ record, plan, check }: Audit, expected: Merge): void {
  const recorded = record.clipped ?? [];
  const clipNorm = plan.plan.privacy?.clipNorm ?? plan.plan.clip?.maxNorm;
  if (clipNorm === undefined && recorded.length === 0) return;
  const render = (list: readonly ClippedEntry[]) => (list.length ? list.map((c) => `${c.edge} (norm ${c.norm})`).join(', ') : 'none');
  const same = recorded.length === expected.clipped.length && recorded.every((c, i) => c.edge === expected.clipped[i]!.edge && Object.is(c.norm, expected.clipped[i]!.norm));
  const bound = clipNorm !== undefined ? `norm ${clipNorm}` : 'no clip in the plan';
  const what = `updates clipped (${bound}): ${escapeUntrusted(render(recorded), 500)}`;
  check(same, same ? what : `${what}; recomputed: ${render(expected.clipped)}`);
}

/** The optimiser state the merge starts from (null after round 0), or undefined when the parent's cannot be read. */
export async function previousState({ global, check }: Audit, parent: GlobalRecord): Promise<StrategyState | null | undefined> {
  try {
    const state = await readStateAfter(global, parent);
    check(true, parent.round === 0 ? 'the optimiser starts from zero state (the parent is round 0)' : `parent ${shortId(parent.oid)} holds the optimiser state after step ${state!.step}`);
    return state;
  } catch (e) {
    check(false, `parent ${shortId(parent.oid)} holds a readable optimiser state: ${escapeUntrusted((e as Error).message, REASON_CHARS)}`);
    return undefined;
  }
}

/** A server optimiser's stored state is the recomputed one, byte for byte; a stateless strategy's commit holds none. */
export async function auditState({ global, oid, record, plan, check }: Audit, strategy: string, expected: Pick<Merge, 'state'>): Promise<void> {
  const stored = await readStateFile(global, oid);
  if (!expected.state) {
    if (stored) check(false, `${STATE_FILE} is absent (${strategy} keeps no state)`);
    return;
  }
  const recomputed = stateBytes(expected.state, { planId: plan.id, round: record.round, strategy });
  check(expected.state.step === record.round, `the optimiser's step count ${expected.state.step} is the round (${record.round})`);
  const what = `recomputed ${strategy} optimiser state (step ${expected.state.step}, ${expected.state.tensors.size} tensors) matches the stored ${STATE_FILE} bit for bit`;
  check(stored !== null && recomputed.equals(stored), stored === null ? `${what}: the commit has no ${STATE_FILE}` : recomputed.equals(stored) ? what : `${what}: it differs (${stateDifference(stored, expected.state)})`);
}

/** Where a stored state first departs from the recomputed one, for the audit line. */
function stateDifference(stored: Buffer, expected: StrategyState): string {
  let state: StrategyState;
  try {
    state = parseState(stored, STATE_FILE);
  } catch (e) {
    return escapeUntrusted((e as Error).message);
  }
  if (state.step !== expected.step) return `step ${state.step} stored, ${expected.step} recomputed`;
  for (const [name, tensor] of expected.tensors) {
    const data = state.tensors.get(name)?.data;
    if (!data || data.length !== tensor.data.length) return `tensor ${name} missing or of another size`;
    const at = tensor.data.findIndex((v, i) => !Object.is(v, data[i]));
    if (at >= 0) return `${name}[${at}] is ${data[at]} stored, ${tensor.data[at]} recomputed`;
  }
  return state.tensors.size !== expected.tensors.size ? 'extra tensors stored' : 'the metadata differs';
}

type Loader<T> = (repo: Repository, plan: CommittedPlan, record: EdgeRecord, spec: readonly TensorSpec[]) => Promise<{ readonly ok: true; readonly update: T } | { readonly ok: false; readonly reason: string }>;

/** A merged update's commit that passed the commit checks, with how to load and check its weights. */
type CheckedCommit<T> = { readonly record: EdgeRecord; readonly load: () => Promise<T | null> };

/** One merged update's commit, read from the edge that pushed it: that edge's update for this round and base; `load` then checks its weights with `loader`. */
async function auditCommitOf<T>({ where, registries, record, plan, check }: Audit, m: MergedEntry, location: string | undefined, loader: Loader<T>): Promise<CheckedCommit<T> | null> {
  const repo = location ? await where.open.open(location).catch(() => null) : null;
  if (!check(repo !== null, `repository of ${m.edge} is reachable${location ? ` (${location})` : ''}`) || !repo) return null;
  await repo.refresh();
  let edgeRecord;
  try {
    edgeRecord = parseEdgeRecord(await repo.readCommit(m.commit));
  } catch (e) {
    check(false, `edge commit ${shortId(m.commit)} of ${m.edge} exists: ${(e as Error).message}`);
    return null;
  }
  if (!check(edgeRecord !== undefined, `${shortId(m.commit)} is a fedgit commit of ${m.edge}`) || !edgeRecord) return null;
  check(edgeRecord.edge === m.edge && edgeRecord.planId === plan.id && edgeRecord.round === record.round, `${m.edge}@${shortId(m.commit)} is ${m.edge}'s round ${record.round} of this plan`);
  check(edgeRecord.base === record.parent, `${m.edge}@${shortId(m.commit)} trained from the previous global commit ${record.parent ? shortId(record.parent) : ''}`);
  check(edgeRecord.datasetSize === m.datasetSize, `${m.edge} dataset size ${edgeRecord.datasetSize} matches the merge trailer (${m.datasetSize})`);
  const { app } = plan.plan;
  const spec = registries.apps.tensorSpec(app.id, app.options);
  const edgeKey = plan.plan.edges.find((e) => e.name === m.edge)?.publicKey;
  const signedBy = edgeKey ? ` signed by ${m.edge}'s key (${fingerprint(edgeKey)}) and` : '';
  const committed = edgeRecord;
  return {
    record: committed,
    async load() {
      const loaded = await loader(repo, plan, committed, spec);
      return check(loaded.ok, `${m.edge}@${shortId(m.commit)}${signedBy} passes every check of an update${loaded.ok ? '' : `: ${escapeUntrusted(loaded.reason, REASON_CHARS)}`}`) && loaded.ok ? loaded.update : null;
    },
  };
}

/** A merged update whose weights the streaming merge reads when it reaches it. */
async function auditEdgeCommit(audit: Audit, m: MergedEntry, location: string | undefined): Promise<AuditedSource | null> {
  const checked = await auditCommitOf(audit, m, location, loadUpdate);
  if (!checked) return null;
  const source: AuditedSource = {
    edge: checked.record.edge,
    datasetSize: checked.record.datasetSize,
    attempted: false,
    load() {
      source.attempted = true;
      return checked.load();
    },
  };
  return source;
}

/** One merged update read at once with `load` (a secure merge's masked update), after the same commit checks. */
export async function auditUpdate<T>(audit: Audit, m: MergedEntry, location: string | undefined, load: Loader<T>): Promise<T | null> {
  const checked = await auditCommitOf(audit, m, location, load);
  return checked ? checked.load() : null;
}

/** Why a merge's metrics.json disagrees with its trailers (round, merged edges, commits, sizes), or null. */
function mergeMetricsProblem(metrics: Record<string, unknown>, record: GlobalRecord): string | null {
  if (metrics.round !== record.round) return `round is ${JSON.stringify(metrics.round)}, not ${record.round}`;
  const updates = metrics.updates as Record<string, { commit?: unknown; datasetSize?: unknown }> | undefined;
  if (!updates || typeof updates !== 'object') return 'no updates listed';
  const listed = Object.keys(updates).sort();
  const merged = record.merged.map((m) => m.edge).sort();
  if (listed.join(',') !== merged.join(',')) return `lists ${listed.map((e) => escapeUntrusted(e, 64)).join(', ')} but the merge used ${merged.join(', ')}`;
  const wrong = record.merged.find((m) => updates[m.edge]?.commit !== m.commit || updates[m.edge]?.datasetSize !== m.datasetSize);
  return wrong ? `the entry of ${wrong.edge} does not name commit ${shortId(wrong.commit)} with dataset size ${wrong.datasetSize}` : null;
}

/**
 * A DP merge (plan `privacy`): the privacy trailers recomputed from the plan and the round, the
 * fixed 1/n weights, the clipping, and then either the whole merge bit for bit (given the round's
 * noise seed, which must match the commitment) or, without it, a statistical check of the noise.
 */
async function auditDpMerge(audit: Audit, sources: readonly AuditedSource[], parent: GlobalRecord): Promise<void> {
  const { global, oid, record, plan, stored, meta, noiseSeed, check } = audit;
  const privacy = plan.plan.privacy;
  if (!check(privacy !== undefined, 'the merge carries privacy trailers and its plan has a privacy section') || !privacy) return;
  const recorded = record.privacy;
  const expectedTrailers = privacyTrailerValues(privacy, record.round);
  const trailersMatch = recorded !== undefined && recorded.epsilon === expectedTrailers.epsilon && recorded.delta === expectedTrailers.delta && recorded.accountant === expectedTrailers.accountant;
  check(trailersMatch, `privacy trailers ε ≤ ${expectedTrailers.epsilon}, δ ${expectedTrailers.delta}, ${expectedTrailers.accountant} recomputed from the plan and round ${record.round}${trailersMatch ? '' : `: recorded ${escapeUntrusted(JSON.stringify(recorded ?? null), 300)}`}`);
  const commitment = recorded?.noiseCommitment ?? '';
  if (!check(/^sha256:[0-9a-f]{64}$/.test(commitment), `the merge commits to its noise seed (${escapeUntrusted(commitment, 80) || 'none'})`)) return;
  const n = plan.plan.edges.length;
  check(record.merged.every((m) => m.weight === 1 / n), `every merged update weighs 1/${n} (the fixed denominator: the plan's ${n} edges)`);
  const strategy = audit.registries.strategies.get(plan.plan.strategy, plan.plan.strategyOptions);
  const mergeWith = (seed: Uint8Array) => mergeAll(sources, (merged) => streamMerge(plan.plan, strategy, merged, () => readWeights(global, parent.oid), { noiseSeed: seed, released: memoryReleaser() }));
  if (noiseSeed) {
    const seedMatches = check(noiseSeed.length === SEED_BYTES && noiseCommitment(noiseSeed) === commitment, `the noise seed given matches the commitment ${shortId(commitment.slice('sha256:'.length))}…`);
    if (!seedMatches) return;
    const expected = await mergeWith(noiseSeed);
    if (!expected) return;
    checkClipping(audit, expected);
    check(checkpointBytes(expected.tensors, meta).equals(stored), `recomputed DP-FedAvg (clipping, 1/${n} average, noise from the seed) over ${sources.length} updates matches the stored weights bit for bit (${stored.length} bytes)`);
    return;
  }
  // The noise-free part does not depend on the seed; any seed gives it.
  const expected = await mergeWith(new Uint8Array(SEED_BYTES));
  if (!expected) return;
  checkClipping(audit, expected);
  checkNoiseStatistics(audit, await readWeights(global, oid), expected.dp!);
}

/** Two-sided false-alarm rate of the seedless noise check. */
export const NOISE_CHECK_FALSE_ALARM = 1e-5;
/** The standard normal quantile at 1 − NOISE_CHECK_FALSE_ALARM / 2. */
const NOISE_CHECK_Z = 4.4172;

/**
 * [lower, upper] of a χ² with `d` degrees of freedom at two-sided rate NOISE_CHECK_FALSE_ALARM, by
 * the Wilson–Hilferty approximation (Wilson & Hilferty, PNAS 1931): (χ²/d)^(1/3) is nearly normal.
 */
export function chiSquareBounds(d: number): [number, number] {
  const spread = Math.sqrt(2 / (9 * d));
  const at = (z: number) => d * Math.max(0, 1 - 2 / (9 * d) + z * spread) ** 3;
  return [at(-NOISE_CHECK_Z), at(NOISE_CHECK_Z)];
}

/** The variance of rounding to float32 near `value`: ulp²/12 (uniform error within half an ulp). */
function float32RoundingVariance(value: number): number {
  const magnitude = Math.max(Math.abs(value), 2 ** -126);
  const ulp = 2 ** (Math.floor(Math.log2(magnitude)) - 23);
  return (ulp * ulp) / 12;
}

/**
 * Without the seed: stored − noise-free average, over all d coordinates, should be d independent
 * N(0, σ²) draws plus float32 rounding (ulp²/12 added to each coordinate's variance, so a tiny σ
 * does not raise a false alarm), so Σ r²/(σ² + ulp²/12) is nearly χ²_d.
 */
function checkNoiseStatistics({ check }: Audit, stored: Tensors, dp: NonNullable<Merge['dp']>): void {
  let sumOfSquares = 0;
  let d = 0;
  for (const [name, average] of dp.noiseFree) {
    const data = stored.get(name)?.data;
    if (!data || data.length !== average.length) return void check(false, `the stored weights hold tensor ${name} of ${average.length} values`);
    for (let i = 0; i < average.length; i++) sumOfSquares += (data[i]! - average[i]!) ** 2 / (dp.noiseStd ** 2 + float32RoundingVariance(data[i]!));
    d += average.length;
  }
  const [lower, upper] = chiSquareBounds(d);
  const ratio = Math.sqrt(sumOfSquares / d);
  check(sumOfSquares >= lower && sumOfSquares <= upper, `stored weights − recomputed noise-free average look like N(0, σ²), σ = ${dp.noiseStd.toPrecision(6)}: measured std ${(ratio * dp.noiseStd).toPrecision(4)} (${ratio.toFixed(3)} σ) over ${d} coordinates, χ² ${sumOfSquares.toPrecision(6)} within [${lower.toPrecision(4)}, ${upper.toPrecision(4)}] (false alarm ${NOISE_CHECK_FALSE_ALARM})`);
  check(true, 'not checked: the noise itself was not recomputed — that needs the round\'s seed, which the aggregator keeps secret because anyone holding it could subtract the noise');
}

export function renderAudit(r: AuditReport): string {
  const lines = r.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.what}`);
  lines.push(r.ok ? `audit passed: ${shortId(r.commit)} (round ${r.round})` : `audit FAILED: ${shortId(r.commit)}`);
  return lines.join('\n');
}
