/** Reads everything the report shows for one plan from git (and, for an experiment, its comparison.json). */
import { readFile } from 'node:fs/promises';
import { planBranch, rejectionBranch, TRAILER, WEIGHTS_FILE, trailer, trailerAll, parseRejected, type RejectedEntry } from '../git/names.js';
import { parseSafetensors } from '../checkpoint/safetensors.js';
import type { CommittedPlan } from '../plan/plan.js';
import type { Repository } from '../git/repository.js';
import { parseEdgeRecord, type EdgeRecord } from '../store/records.js';
import { readFinalTag, readGlobalHistory, readMetrics } from '../store/federation.js';
import { auditCommit } from '../commands/audit.js';
import { openForReading, type Where } from '../commands/locate.js';
import type { Registries } from '../runtime/registries.js';
import { escapeUntrusted } from '../text/untrusted.js';
import type { AuditSummary, FederationFacts } from './model.js';
import { parseExperimentView, type ExperimentView } from './experiment-view.js';

export type ReadOptions = {
  /** Recompute every merge (`fedgit audit`) while reading; on by default. */
  readonly audit?: boolean;
  /** Audits already done, by commit id: a global commit never changes, so a live view audits each once. */
  readonly auditCache?: Map<string, AuditSummary>;
  readonly experiment?: ExperimentView | null;
  readonly nowMs?: number;
};

/** The subject line of a commit message. */
const subjectOf = (message: string) => message.split('\n', 1)[0] ?? '';

async function readRejectionRecords(global: Repository, plan: CommittedPlan): Promise<FederationFacts['rejectionRecords']> {
  const head = await global.readRef(rejectionBranch(plan.plan.name, plan.id));
  if (!head) return [];
  const chain = await global.firstParentChain(head);
  return chain.reverse().flatMap((c) => {
    const base = trailer(c.trailers, TRAILER.base);
    const round = Number(trailer(c.trailers, TRAILER.round));
    if (trailer(c.trailers, TRAILER.plan) !== plan.id || !base) return [];
    const entries = trailerAll(c.trailers, TRAILER.rejected).map(parseRejected).filter((r): r is RejectedEntry => r !== undefined);
    return [{ oid: c.oid, timeMs: c.committer.timestamp * 1000, round: Number.isInteger(round) ? round : 0, base, entries }];
  });
}

export async function readFederationFacts(where: Where, registries: Registries, plan: CommittedPlan, options: ReadOptions = {}): Promise<FederationFacts> {
  const edgeNames = plan.plan.edges.map((e) => e.name);
  const locations = where.locate(edgeNames);
  const global = await openForReading(where, locations.global, 'the global repository');
  const history = await readGlobalHistory(global, plan);
  const globals = [];
  for (const record of history) globals.push({ record, metrics: await readMetrics(global, record.oid) });
  const edges: Record<string, Array<{ record: EdgeRecord; subject: string }> | null> = {};
  for (const edge of edgeNames) {
    const location = locations.edges[edge];
    edges[edge] = location ? await readEdgeCommits(where, location, plan) : null;
  }
  const audits: Record<string, AuditSummary> = {};
  if (options.audit ?? true) {
    for (const { record } of globals) audits[record.oid] = await auditOnce(where, registries, record.oid, options.auditCache);
  }
  const tensors = await readTensorShapes(global, history[history.length - 1]);
  return {
    plan,
    finalTag: await readFinalTag(global, plan),
    globals,
    edges,
    rejectionRecords: await readRejectionRecords(global, plan),
    audits,
    tensors,
    experiment: options.experiment ?? null,
    generatedAt: new Date(options.nowMs ?? Date.now()).toISOString(),
  };
}

/** An edge's commits for the plan, newest first, each with its subject; null when its repository cannot be read. */
async function readEdgeCommits(where: Where, location: string, plan: CommittedPlan): Promise<Array<{ record: EdgeRecord; subject: string }> | null> {
  const repo = await where.open.open(location).catch(() => null);
  if (!repo) return null;
  try {
    await repo.refresh();
    // As readEdgeHistory, keeping each commit's subject (read once).
    const head = await repo.readRef(planBranch(plan.plan.name, plan.id));
    const chain = head ? await repo.firstParentChain(head) : [];
    return chain.flatMap((c) => {
      const record = parseEdgeRecord(c);
      return record && record.planId === plan.id ? [{ record, subject: subjectOf(c.message) }] : [];
    });
  } catch {
    return null;
  }
}

/** `fedgit audit` of one global commit, summarised; a pass is kept in `cache` and not recomputed. */
async function auditOnce(where: Where, registries: Registries, oid: string, cache: Map<string, AuditSummary> | undefined): Promise<AuditSummary> {
  const cached = cache?.get(oid);
  if (cached) return cached;
  let summary: AuditSummary;
  try {
    const report = await auditCommit(where, registries, oid);
    summary = { ok: report.ok, checks: report.checks.length, failed: report.checks.filter((c) => !c.ok).map((c) => escapeUntrusted(c.what, 300)) };
  } catch (e) {
    summary = { ok: false, checks: 0, failed: [`the audit could not run: ${escapeUntrusted((e as Error).message, 300)}`] };
  }
  // A failure may be a repository that is briefly unreachable: only a pass is kept.
  if (summary.ok) cache?.set(oid, summary);
  return summary;
}

/** Names and shapes of the tensors in a global commit's checkpoint; none when there is no commit or it cannot be read. */
async function readTensorShapes(global: Repository, head: { readonly oid: string } | undefined): Promise<FederationFacts['tensors']> {
  if (!head) return [];
  return global.readFile(head.oid, WEIGHTS_FILE).then((b) => [...parseSafetensors(b).tensors].map(([name, t]) => ({ name, shape: t.shape })), () => []);
}

/** comparison.json of `fedgit experiment`, as the report shows it. */
export async function readExperimentView(file: string): Promise<ExperimentView | null> {
  return parseExperimentView(JSON.parse(await readFile(file, 'utf8')));
}
