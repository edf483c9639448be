/**
 * What the report shows, derived from what git holds (read-facts.ts) by pure functions.
 * The model is plain JSON: the page embeds it for its charts, the live view sends it again.
 * Strings in it are as git has them (bounded); rendering escapes them.
 */
import { parseRejected, type RejectedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';
import type { Metrics } from '../contracts.js';
import { escapeUntrusted } from '../text/untrusted.js';
import type { ExperimentView } from './experiment-view.js';

export type AuditSummary = { readonly ok: boolean; readonly checks: number; readonly failed: readonly string[] };

/** Everything read from git for one plan; read-facts.ts fills it. */
export type FederationFacts = {
  readonly plan: CommittedPlan;
  readonly finalTag: string | null;
  /** The plan's global commits, oldest first. */
  readonly globals: ReadonlyArray<{ readonly record: GlobalRecord; readonly metrics: Metrics }>;
  /** Per plan edge: its commits for the plan, newest first, or null when its repository could not be read. */
  readonly edges: Readonly<Record<string, ReadonlyArray<{ readonly record: EdgeRecord; readonly subject: string }> | null>>;
  /** The aggregator's record of refused updates (refs/heads/fedgit-rejected/…), oldest first. */
  readonly rejectionRecords: ReadonlyArray<{ readonly oid: string; readonly timeMs: number; readonly round: number; readonly base: string; readonly entries: readonly RejectedEntry[] }>;
  /** Audit of each global commit, by commit id (absent: not audited). */
  readonly audits: Readonly<Record<string, AuditSummary>>;
  /** Names and shapes of the tensors in the newest global checkpoint. */
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>;
  readonly experiment: ExperimentView | null;
  readonly generatedAt: string;
};

export type CellStatus = 'merged' | 'rejected' | 'late' | 'missed' | 'waiting' | 'pending' | 'unreachable';

export type TimelineCell = {
  readonly edge: string;
  readonly status: CellStatus;
  readonly commit: string | null;
  readonly subject: string | null;
  /** Seconds from the round opening (the previous global commit) to the edge's push. */
  readonly delaySeconds: number | null;
  /** Seconds from the round opening to when the edge began training (its commit's author date). */
  readonly startedSeconds: number | null;
  readonly rejected: number;
  readonly reason: string | null;
};

export type RoundView = {
  readonly round: number;
  readonly commit: string;
  readonly timeMs: number;
  readonly strategy: string | null;
  readonly source: string | null;
  readonly signed: boolean;
  readonly merged: ReadonlyArray<{ readonly edge: string; readonly commit: string; readonly datasetSize: number; readonly weight: number; readonly signed: boolean | null }>;
  readonly audit: AuditSummary | null;
};

export type CurveSeries = { readonly edge: string; readonly kind: 'global' | 'local'; readonly points: ReadonlyArray<readonly [number, number]> };

export type ReportModel = {
  readonly kind: 'fedgit-report/v1';
  readonly generatedAt: string;
  readonly plan: {
    readonly id: string; readonly name: string; readonly rounds: number; readonly epochsPerRound: number; readonly edges: readonly string[];
    readonly minEdges: number; readonly roundDeadlineMs: number; readonly strategy: string; readonly app: string;
    readonly signedEdges: number; readonly aggregatorKey: boolean;
  };
  readonly state: { readonly roundsDone: number; readonly finished: boolean; readonly head: string | null; readonly finalCommit: string | null };
  readonly rounds: readonly RoundView[];
  readonly timeline: ReadonlyArray<{ readonly round: number; readonly openedMs: number; readonly closedMs: number | null; readonly cells: readonly TimelineCell[] }>;
  readonly rejections: ReadonlyArray<{ readonly round: number; readonly edge: string; readonly commit: string; readonly reason: string; readonly timeMs: number | null }>;
  /** Edge commits whose Fedgit-Edge trailer names someone else than the repository's edge. */
  readonly foreign: ReadonlyArray<{ readonly repository: string; readonly claimed: string; readonly commit: string; readonly subject: string }>;
  readonly metricNames: readonly string[];
  readonly curves: Readonly<Record<string, readonly CurveSeries[]>>;
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>;
  readonly experiment: ExperimentView | null;
};

const PREFERRED_METRICS = ['loss', 'accuracy', 'auc', 'macroAuc', 'f1'];
/** Charts per metric are capped: an edge may report hundreds of keys. */
const MAX_METRICS = 8;
/** Counts rather than measures of quality: not charted. */
const COUNTERS = new Set(['n', 'steps', 'epochs', 'samples']);
const MAX_TENSORS = 400;
/** Names (metric keys, tensor names) as shown: control characters visible, bounded. */
const bound = (text: string, max = 120) => escapeUntrusted(text, max);

function metricNames(facts: FederationFacts): string[] {
  const seen = new Set<string>();
  for (const commits of Object.values(facts.edges)) {
    for (const { record } of commits ?? []) {
      for (const [k, v] of [...Object.entries(record.metricsGlobal), ...Object.entries(record.metricsLocal)]) if (Number.isFinite(v) && !COUNTERS.has(k)) seen.add(k);
    }
  }
  const preferred = PREFERRED_METRICS.filter((k) => seen.has(k));
  const others = [...seen].filter((k) => !PREFERRED_METRICS.includes(k)).sort();
  return [...preferred, ...others].slice(0, MAX_METRICS);
}

export function buildReportModel(facts: FederationFacts): ReportModel {
  const { plan, globals } = facts;
  const edges = plan.plan.edges.map((e) => e.name);
  const head = globals[globals.length - 1]?.record ?? null;
  const finished = facts.finalTag !== null && head !== null && facts.finalTag === head.oid;
  // The round in progress has opened too, unless the plan is finished.
  const lastRound = head === null ? 0 : Math.min(plan.plan.rounds, finished ? head.round : head.round + 1);
  const rejections = collectRejections(facts);
  const curves = metricCurves(facts, edges);
  return {
    kind: 'fedgit-report/v1',
    generatedAt: facts.generatedAt,
    plan: planSummary(plan, edges),
    state: { roundsDone: head?.round ?? 0, finished, head: head?.oid ?? null, finalCommit: facts.finalTag },
    rounds: roundViews(facts),
    timeline: timelineRows(facts, edges, rejections, lastRound),
    rejections,
    foreign: foreignCommits(facts, edges),
    metricNames: Object.keys(curves),
    curves,
    tensors: facts.tensors.slice(0, MAX_TENSORS).map((t) => ({ name: bound(t.name, 200), shape: [...t.shape] })),
    experiment: facts.experiment,
  };
}

type Rejection = ReportModel['rejections'][number];
type EdgeCommit = NonNullable<FederationFacts['edges'][string]>[number];

/** An edge's commits for the plan, newest first (none when its repository could not be read). */
const commitsOf = (facts: FederationFacts, edge: string): readonly EdgeCommit[] => facts.edges[edge] ?? [];

function planSummary(plan: CommittedPlan, edges: readonly string[]): ReportModel['plan'] {
  return {
    id: plan.id,
    name: plan.plan.name,
    rounds: plan.plan.rounds,
    epochsPerRound: plan.plan.epochsPerRound,
    edges,
    minEdges: plan.plan.minEdges,
    roundDeadlineMs: plan.plan.roundDeadlineMs,
    strategy: plan.plan.strategy,
    app: plan.plan.app.id,
    signedEdges: plan.plan.edges.filter((e) => e.publicKey !== undefined).length,
    aggregatorKey: plan.plan.aggregator?.publicKey !== undefined,
  };
}

/**
 * Refused updates: the aggregator's record (with the time it refused them) and the
 * Fedgit-Rejected trailers of merges, each edge commit once, the record first.
 */
function collectRejections(facts: FederationFacts): Rejection[] {
  const roundOfBase = new Map(facts.globals.map((g) => [g.record.oid, g.record.round + 1]));
  const rejections: Rejection[] = [];
  const seenRejection = new Set<string>();
  const addRejection = (round: number, entry: RejectedEntry, timeMs: number | null) => {
    const key = `${entry.edge} ${entry.commit}`;
    if (seenRejection.has(key)) return;
    seenRejection.add(key);
    rejections.push({ round, edge: bound(entry.edge, 80), commit: entry.commit, reason: bound(entry.reason, 300), timeMs });
  };
  for (const r of facts.rejectionRecords) for (const e of r.entries) addRejection(roundOfBase.get(r.base) ?? r.round, e, r.timeMs);
  for (const g of facts.globals) {
    for (const text of g.record.rejected) {
      const e = parseRejected(text);
      if (e) addRejection(g.record.round, e, null);
    }
  }
  return rejections;
}

/** Each global commit: what it merged, with what weights, whether signed, and its audit. */
function roundViews(facts: FederationFacts): RoundView[] {
  const edgeCommit = (edge: string, oid: string) => commitsOf(facts, edge).find((c) => c.record.oid === oid);
  return facts.globals.map(({ record }) => ({
    round: record.round,
    commit: record.oid,
    timeMs: record.timeMs,
    strategy: record.strategy ?? null,
    source: record.source !== undefined ? bound(record.source, 200) : null,
    signed: record.signature !== undefined,
    merged: record.merged.map((m) => {
      const own = edgeCommit(m.edge, m.commit);
      return { edge: bound(m.edge, 80), commit: m.commit, datasetSize: m.datasetSize, weight: m.weight, signed: own ? own.record.signature !== undefined : null };
    }),
    audit: facts.audits[record.oid] ?? null,
  }));
}

/** One row per round that has opened, up to `lastRound`: from the global commit it trains from to the merge (or now). */
function timelineRows(facts: FederationFacts, edges: readonly string[], rejections: readonly Rejection[], lastRound: number): Array<ReportModel['timeline'][number]> {
  const timeline: Array<ReportModel['timeline'][number]> = [];
  for (let r = 1; r <= lastRound; r++) {
    const base = facts.globals[r - 1]?.record;
    if (!base) break;
    const merge = facts.globals[r]?.record;
    const cells = edges.map((edge) => timelineCell(facts, edge, { base, merge }, rejections.filter((x) => x.round === r && x.edge === edge)));
    timeline.push({ round: r, openedMs: base.timeMs, closedMs: merge?.timeMs ?? null, cells });
  }
  return timeline;
}

/** What one edge did in one round (`refused`: its refused updates of that round): its status and the commit shown, the merged one if any. */
function timelineCell(facts: FederationFacts, edge: string, round: { readonly base: GlobalRecord; readonly merge: GlobalRecord | undefined }, refused: readonly Rejection[]): TimelineCell {
  const { base, merge } = round;
  const known = facts.edges[edge];
  const reason = refused[refused.length - 1]?.reason ?? null;
  if (known === null || known === undefined) return { edge, status: 'unreachable', commit: null, subject: null, delaySeconds: null, startedSeconds: null, rejected: refused.length, reason };
  const pushed = known.filter((c) => c.record.base === base.oid);
  const mergedEntry = merge?.merged.find((m) => m.edge === edge);
  const refusedCommits = new Set(refused.map((x) => x.commit));
  const honest = pushed.filter((c) => !refusedCommits.has(c.record.oid));
  const shown = (mergedEntry ? pushed.find((c) => c.record.oid === mergedEntry.commit) : undefined) ?? honest[honest.length - 1] ?? pushed[pushed.length - 1];
  const status: CellStatus = mergedEntry ? 'merged'
    : honest.length > 0 ? (merge ? 'late' : 'waiting')
    : refused.length > 0 ? 'rejected'
    : merge ? 'missed' : 'pending';
  return {
    edge,
    status,
    commit: mergedEntry?.commit ?? shown?.record.oid ?? null,
    subject: shown ? bound(shown.subject, 200) : null,
    delaySeconds: shown ? Math.max(0, (shown.record.timeMs - base.timeMs) / 1000) : null,
    startedSeconds: shown ? Math.max(0, (shown.record.startedMs - base.timeMs) / 1000) : null,
    rejected: refused.length,
    reason,
  };
}

/** Per charted metric (its name bounded), each edge's global-model and local-model series. */
function metricCurves(facts: FederationFacts, edges: readonly string[]): Record<string, CurveSeries[]> {
  const curves: Record<string, CurveSeries[]> = {};
  for (const name of metricNames(facts)) curves[bound(name, 80)] = edges.flatMap((edge) => edgeSeries(facts, edge, name));
  return curves;
}

/**
 * One edge's points for one metric: the global model of round r-1 on its validation data
 * (reported by the edge in round r), and its local model after round r; empty series left out.
 */
function edgeSeries(facts: FederationFacts, edge: string, name: string): CurveSeries[] {
  const { globals } = facts;
  const globalPoints: Array<[number, number]> = [];
  const localPoints: Array<[number, number]> = [];
  for (let r = 1; r < globals.length + 1 && r <= facts.plan.plan.rounds; r++) {
    const base = globals[r - 1]!.record;
    const mergedEntry = globals[r]?.record.merged.find((m) => m.edge === edge);
    const candidates = commitsOf(facts, edge).filter((c) => c.record.base === base.oid);
    const chosen = (mergedEntry ? candidates.find((c) => c.record.oid === mergedEntry.commit) : undefined) ?? candidates[0];
    if (!chosen || chosen.record.problem) continue;
    const g = chosen.record.metricsGlobal[name];
    const l = chosen.record.metricsLocal[name];
    if (g !== undefined && Number.isFinite(g)) globalPoints.push([r - 1, g]);
    if (l !== undefined && Number.isFinite(l)) localPoints.push([r, l]);
  }
  const series: CurveSeries[] = [];
  if (globalPoints.length) series.push({ edge, kind: 'global', points: globalPoints });
  if (localPoints.length) series.push({ edge, kind: 'local', points: localPoints });
  return series;
}

/** Edge commits whose Fedgit-Edge trailer names someone else than the repository's edge. */
function foreignCommits(facts: FederationFacts, edges: readonly string[]): ReportModel['foreign'] {
  return edges.flatMap((edge) => commitsOf(facts, edge)
    .filter((c) => c.record.edge !== edge)
    .map((c) => ({ repository: edge, claimed: bound(c.record.edge, 80), commit: c.record.oid, subject: bound(c.subject, 200) })));
}
