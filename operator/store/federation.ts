/**
 * The repositories of one federation and the commits fedgit writes to them.
 * Every write moves a ref by compare-and-swap; nothing here keeps state.
 */
import path from 'node:path';
import type { Metrics, StrategyState, Tensors } from '../contracts.js';
import { Repository, type LfsPolicy } from '../git/repository.js';
import {
  METRICS_FILE, PLAN_BRANCH, PLAN_FILE, REPO_DIRS, TRAILER, WEIGHTS_FILE, inferenceTag, planBranch, rejectionBranch, renderClipped, renderMerged, renderMessage,
  renderMetricSummary, renderRejected, shortId, trailer, trailerAll, parseRejected, renderMasked, type ClippedEntry, type MergedEntry, type RejectedEntry, type PrivacyEntry,
  type MaskedEntry, TRAILER as T, renderEdgeCommit,
} from '../git/names.js';
import { parseSafetensors, safetensorsPieces, wordSafetensorsPieces, type WordTensors } from '../checkpoint/safetensors.js';
import { digestHex, piecesOf, type Pieces } from '../git/content.js';
import { parseEdgeRecord, parseGlobalRecord, type EdgeRecord, type GlobalRecord } from './records.js';
import type { CommittedPlan, Plan } from '../plan/plan.js';
import { renderEdgeStatement, renderMergeStatement, sha256Hex, type MergeStatement } from '../trust/statements.js';
import { STATE_FILE, stateBytes } from './strategy-state.js';

/**
 * How many of an edge's newest commits are read on each look. Only commits based on the current
 * global head matter; an honest edge pushes one per head, so 8 leaves room for a few bad ones
 * pushed on top without reading whole histories.
 */
export const RECENT_EDGE_COMMITS = 8;

export type RepoLocations = { readonly plan: string; readonly global: string; readonly edges: Readonly<Record<string, string>> };

/** The conventional layout under one folder (the default `repos/`). */
export function reposUnder(root: string, edgeNames: readonly string[]): RepoLocations {
  return {
    plan: path.join(root, REPO_DIRS.plan),
    global: path.join(root, REPO_DIRS.global),
    edges: Object.fromEntries(edgeNames.map((e) => [e, path.join(root, REPO_DIRS.edge(e))])),
  };
}

export const author = (participant: string, atMs = Date.now()) => ({ name: `fedgit ${participant}`, email: `${participant}@fedgit.invalid`, timestamp: Math.floor(atMs / 1000) });

/** The same layout on a git server: `<base>/plan.git`, `<base>/global.git`, `<base>/edge-<name>.git`. */
export function reposAtUrl(base: string, edgeNames: readonly string[]): RepoLocations {
  const at = (name: string) => `${base.replace(/\/+$/, '')}/${name}`;
  return { plan: at(REPO_DIRS.plan), global: at(REPO_DIRS.global), edges: Object.fromEntries(edgeNames.map((e) => [e, at(REPO_DIRS.edge(e))])) };
}

// ---- plan ----

export async function readPlanHead(repo: Repository): Promise<{ id: string; text: string } | null> {
  const id = await repo.readRef(PLAN_BRANCH);
  if (!id) return null;
  return { id, text: (await repo.readFile(id, PLAN_FILE)).toString('utf8') };
}

/** Commits the plan text unless the current head already holds exactly this text (then that plan resumes). */
export async function commitPlan(repo: Repository, text: string, plan: Plan, options: { forceNew?: boolean } = {}): Promise<{ id: string; created: boolean }> {
  const head = await repo.readRef(PLAN_BRANCH);
  if (head && !options.forceNew && (await repo.readFile(head, PLAN_FILE)).toString('utf8') === text) return { id: head, created: false };
  const message = renderMessage(`Plan ${plan.name}: ${plan.rounds} rounds over ${plan.edges.map((e) => e.name).join(', ')}`, [
    [TRAILER.planName, plan.name],
  ]);
  const id = await repo.writeCommit({ files: { [PLAN_FILE]: Buffer.from(text, 'utf8') }, parents: head ? [head] : [], message, author: author('plan') });
  await repo.updateRef(PLAN_BRANCH, id, head);
  return { id, created: true };
}

// ---- checkpoints ----

/** The plan's Git LFS policy as `writeCommit` takes it (docs/lfs.md). */
const lfsOf = (plan: CommittedPlan): { lfs?: LfsPolicy } => (plan.plan.lfs ? { lfs: plan.plan.lfs } : {});

type CheckpointMeta = { planId: string; round: number; architecture: string };

const checkpointMetadata = (meta: CheckpointMeta) => ({ 'fedgit.architecture': meta.architecture, 'fedgit.plan': meta.planId, 'fedgit.round': String(meta.round) });

export function checkpointBytes(tensors: Tensors, meta: CheckpointMeta): Buffer {
  return Buffer.concat(checkpointPieces(tensors, meta));
}

/** `checkpointBytes` as pieces: the header, then views on the tensors (operator/git/content.ts). */
export function checkpointPieces(tensors: Tensors, meta: CheckpointMeta): Pieces {
  return safetensorsPieces(tensors, checkpointMetadata(meta));
}

/** A masked update's pieces (secure aggregation), with the same metadata as a model's. */
export function maskedCheckpointPieces(tensors: WordTensors, meta: CheckpointMeta): Pieces {
  return wordSafetensorsPieces(tensors, checkpointMetadata(meta));
}

export async function readWeights(repo: Repository, commit: string): Promise<Tensors> {
  return parseSafetensors(await repo.readFile(commit, WEIGHTS_FILE), `${WEIGHTS_FILE} of ${shortId(commit)} in ${repo.gitdir}`).tensors;
}

export async function readMetrics(repo: Repository, commit: string): Promise<Metrics> {
  try {
    return JSON.parse((await repo.readFile(commit, METRICS_FILE)).toString('utf8')) as Metrics;
  } catch {
    return {};
  }
}

const json = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');

// ---- global repository ----

export async function readGlobalHead(repo: Repository, plan: CommittedPlan): Promise<GlobalRecord | null> {
  const head = await repo.readRef(planBranch(plan.plan.name, plan.id));
  return head ? (parseGlobalRecord(await repo.readCommit(head)) ?? null) : null;
}

/** The plan's global commits, oldest first (round 0 … head). */
export async function readGlobalHistory(repo: Repository, plan: CommittedPlan): Promise<GlobalRecord[]> {
  const head = await repo.readRef(planBranch(plan.plan.name, plan.id));
  if (!head) return [];
  const chain = await repo.firstParentChain(head);
  return chain.map(parseGlobalRecord).filter((r): r is GlobalRecord => r !== undefined && r.planId === plan.id).reverse();
}

/** Signs a statement (operator/trust/statements.ts) with the participant's private key. */
export type Signer = (statement: string) => string;

export type GlobalCommitInput = {
  readonly plan: CommittedPlan;
  readonly round: number;
  readonly architecture: string;
  readonly tensors: Tensors;
  readonly parent: string | null;
  readonly strategy?: string;
  readonly merged?: readonly MergedEntry[];
  /** Updates scaled down to the plan's `clip.maxNorm` (operator/reconcile/merge.ts). */
  readonly clipped?: readonly ClippedEntry[];
  readonly rejected?: readonly RejectedEntry[];
  readonly source?: string;
  readonly metrics: Metrics;
  readonly sign?: Signer;
  /** A server optimiser's state after this merge (operator/store/strategy-state.ts). */
  readonly state?: StrategyState;
  /** A DP merge's ε spent, δ, accountant and noise commitment. */
  readonly privacy?: PrivacyEntry;
  /** A secure merge after a dropout: the recovery request and the survivors' reveal commits it used. */
  readonly recovery?: { readonly request: string; readonly reveals: ReadonlyArray<{ readonly edge: string; readonly commit: string }> };
};

/** Writes round `round` of the plan's global branch; fails with RefConflict if the branch moved. */
export async function commitGlobalRound(repo: Repository, input: GlobalCommitInput): Promise<string> {
  const { plan, round } = input;
  const merged = input.merged ?? [];
  const subject = round === 0
    ? `Round 0 of ${plan.plan.name}: ${input.source ?? 'initial weights'}`
    : `Round ${round} of ${plan.plan.name}: ${input.strategy} over ${merged.length} edge${merged.length === 1 ? '' : 's'}`;
  const trailers: Array<[string, string]> = [
    [TRAILER.plan, plan.id],
    [TRAILER.round, String(round)],
    [TRAILER.architecture, input.architecture],
  ];
  if (input.source) trailers.push([TRAILER.source, input.source]);
  if (input.strategy) trailers.push([TRAILER.strategy, input.strategy]);
  for (const m of merged) trailers.push([TRAILER.merged, renderMerged(m)]);
  for (const c of input.clipped ?? []) trailers.push([TRAILER.clipped, renderClipped(c)]);
  for (const r of input.rejected ?? []) trailers.push([TRAILER.rejected, renderRejected(r.edge, r.commit, r.reason)]);
  if (input.privacy) {
    const p = input.privacy;
    trailers.push([TRAILER.privacyEpsilon, p.epsilon], [TRAILER.privacyDelta, p.delta], [TRAILER.privacyAccountant, p.accountant], [TRAILER.privacyNoise, p.noiseCommitment]);
  }
  if (input.recovery) trailers.push([T.recovery, input.recovery.request], ...input.recovery.reveals.map((r): [string, string] => [T.reveal, renderEdgeCommit(r)]));
  const weights = checkpointPieces(input.tensors, { planId: plan.id, round, architecture: input.architecture });
  if (input.sign) trailers.push([TRAILER.signature, input.sign(renderMergeStatement(mergeStatementOf({ planId: plan.id, round, parent: input.parent, strategy: input.strategy ?? input.source ?? 'initial', merged }, weights)))]);
  const oid = await repo.writeCommit({
    files: {
      [WEIGHTS_FILE]: weights,
      [METRICS_FILE]: json(input.metrics),
      ...(input.state ? { [STATE_FILE]: stateBytes(input.state, { planId: plan.id, round, strategy: input.strategy ?? '' }) } : {}),
    },
    parents: input.parent ? [input.parent] : [],
    message: renderMessage(subject, trailers),
    author: author('aggregator'),
    ...lfsOf(plan),
  });
  await repo.updateRef(planBranch(plan.plan.name, plan.id), oid, input.parent);
  return oid;
}

export async function tagFinal(repo: Repository, plan: CommittedPlan, commit: string): Promise<void> {
  const tag = inferenceTag(plan.plan.name, plan.id);
  const existing = await repo.readRef(tag);
  if (existing === commit) return;
  await repo.updateRef(tag, commit, existing);
}

export const readFinalTag = (repo: Repository, plan: CommittedPlan) => repo.readRef(inferenceTag(plan.plan.name, plan.id));

// ---- the record of refused updates ----

/** How far back the rejection record is read: only entries for the current head matter. */
const REJECTION_RECORD_DEPTH = 64;

/** Refused updates recorded for the plan's global commit `base` (the current head), oldest first. */
export async function readRecordedRejections(repo: Repository, plan: CommittedPlan, base: string): Promise<RejectedEntry[]> {
  const head = await repo.readRef(rejectionBranch(plan.plan.name, plan.id));
  if (!head) return [];
  const chain = await repo.firstParentChain(head, (c) => trailer(c.trailers, TRAILER.base) === base, REJECTION_RECORD_DEPTH);
  return chain.reverse().flatMap((c) => trailerAll(c.trailers, TRAILER.rejected).map(parseRejected).filter((r): r is RejectedEntry => r !== undefined));
}

/** Appends refused updates to the record; fails with RefConflict if another writer moved it. */
export async function commitRejections(repo: Repository, input: { plan: CommittedPlan; base: string; round: number; entries: readonly RejectedEntry[] }): Promise<string> {
  const { plan, entries } = input;
  const ref = rejectionBranch(plan.plan.name, plan.id);
  const parent = await repo.readRef(ref);
  const trailers: Array<[string, string]> = [
    [TRAILER.plan, plan.id],
    [TRAILER.round, String(input.round)],
    [TRAILER.base, input.base],
    ...entries.map((r): [string, string] => [TRAILER.rejected, renderRejected(r.edge, r.commit, r.reason)]),
  ];
  const who = [...new Set(entries.map((r) => r.edge))].join(', ');
  const oid = await repo.writeCommit({
    files: {},
    parents: parent ? [parent] : [],
    message: renderMessage(`Round ${input.round} of ${plan.plan.name}: refused ${entries.length} update${entries.length === 1 ? '' : 's'} from ${who}`, trailers),
    author: author('aggregator'),
  });
  await repo.updateRef(ref, oid, parent);
  return oid;
}

// ---- edge repositories ----

/** The edge's commits for this plan, newest first. */
/** `tip`: the branch's tip as the caller already read it (null: no branch); read from the repository when absent. */
export async function readEdgeHistory(repo: Repository, plan: CommittedPlan, limit = Infinity, tip?: string | null): Promise<EdgeRecord[]> {
  const head = tip !== undefined ? tip : await repo.readRef(planBranch(plan.plan.name, plan.id));
  if (!head) return [];
  const chain = await repo.firstParentChain(head, () => true, limit);
  return chain.map(parseEdgeRecord).filter((r): r is EdgeRecord => r !== undefined && r.planId === plan.id);
}

export type EdgeCommitInput = {
  readonly plan: CommittedPlan;
  readonly edge: string;
  readonly round: number;
  readonly base: string;
  readonly architecture: string;
  readonly tensors: Tensors;
  /** Secure aggregation: the masked update committed instead of `tensors` (which never leave the edge). */
  readonly masked?: { readonly tensors: WordTensors; readonly entry: MaskedEntry };
  readonly datasetSize: number;
  readonly metrics: { readonly global: Metrics; readonly local: Metrics };
  readonly sign?: Signer;
  /** Runs once the commit exists and before the branch moves to it (the edge's push journal). */
  readonly beforeRefMoves?: (commit: string) => Promise<void>;
  /** When training began (ms since the epoch): the commit's author date; its committer date is when it was made. */
  readonly startedMs?: number;
};

export async function commitEdgeUpdate(repo: Repository, input: EdgeCommitInput): Promise<string> {
  const { plan, edge, round } = input;
  const ref = planBranch(plan.plan.name, plan.id);
  const parent = await repo.readRef(ref);
  const trailers: Array<[string, string]> = [
    [TRAILER.plan, plan.id],
    [TRAILER.round, String(round)],
    [TRAILER.architecture, input.architecture],
    [TRAILER.edge, edge],
    [TRAILER.base, input.base],
    [TRAILER.datasetSize, String(input.datasetSize)],
    [TRAILER.metricsGlobal, renderMetricSummary(input.metrics.global)],
    [TRAILER.metricsLocal, renderMetricSummary(input.metrics.local)],
    ...(input.masked ? [[TRAILER.masked, renderMasked(input.masked.entry)] as [string, string]] : []),
  ];
  const meta = { planId: plan.id, round, architecture: input.architecture };
  const weights = input.masked ? maskedCheckpointPieces(input.masked.tensors, meta) : checkpointPieces(input.tensors, meta);
  if (input.sign) {
    const statement = renderEdgeStatement({ planId: plan.id, round, edge, base: input.base, weightsSha256: digestHex('sha256', weights), datasetSize: input.datasetSize, architecture: input.architecture });
    trailers.push([TRAILER.signature, input.sign(statement)]);
  }
  const oid = await repo.writeCommit({
    files: {
      [WEIGHTS_FILE]: weights,
      [METRICS_FILE]: json(input.metrics),
    },
    parents: parent ? [parent] : [],
    message: renderMessage(`${edge}: round ${round} of ${plan.plan.name}, trained from ${shortId(input.base)}`, trailers),
    author: author(edge, input.startedMs),
    committer: author(edge),
    ...lfsOf(plan),
  });
  await input.beforeRefMoves?.(oid);
  await repo.updateRef(ref, oid, parent);
  return oid;
}

// ---- signed statements ----

export function mergeStatementOf(m: { planId: string; round: number; parent: string | null; strategy: string; merged: readonly MergedEntry[] }, weights: Uint8Array | Pieces): MergeStatement {
  return { planId: m.planId, round: m.round, parent: m.parent, weightsSha256: digestHex('sha256', piecesOf(weights)), strategy: m.strategy, merged: m.merged.map((e) => ({ ...e })) };
}

/** The statement an edge commit's signature must cover, rebuilt from its trailers and its stored weights. */
export function edgeStatementOf(record: EdgeRecord, weights: Uint8Array): string {
  return edgeStatementFor(record, sha256Hex(weights));
}

/** The same statement, from the stored weights' SHA-256. */
export function edgeStatementFor(record: EdgeRecord, weightsSha256: string): string {
  return renderEdgeStatement({ planId: record.planId, round: record.round, edge: record.edge, base: record.base, weightsSha256, datasetSize: record.datasetSize, architecture: record.architecture });
}

/** The statement a global commit's signature must cover. */
export function globalStatementOf(record: GlobalRecord, weights: Uint8Array): string {
  return renderMergeStatement(mergeStatementOf({ planId: record.planId, round: record.round, parent: record.parent ?? null, strategy: record.strategy ?? record.source ?? 'initial', merged: record.merged }, weights));
}
