/**
 * The one place that spells fedgit's names in git: branches, tags, files,
 * repository folders and commit trailers. Nothing else builds or parses them.
 */
import { escapeUntrusted } from '../text/untrusted.js';

/** The plan repository's branch, and the default branch of every repository fedgit creates. */
export const DEFAULT_BRANCH = 'main';
export const PLAN_BRANCH = `refs/heads/${DEFAULT_BRANCH}`;
export const PLAN_FILE = 'plan.yaml';
export const WEIGHTS_FILE = 'weights.safetensors';
export const METRICS_FILE = 'metrics.json';
export const SHORT_ID_LENGTH = 8;
/** Files that may go through Git LFS when a plan asks for it (docs/lfs.md). */
export const isLfsFile = (name: string): boolean => name.endsWith('.safetensors');
export const LFS_ATTRIBUTES_FILE = '.gitattributes';
/**
 * The attributes that tell `git lfs` which files of a commit are pointers: exactly those (a
 * checkpoint under the plan's size threshold stays a plain blob, which `git lfs fsck` would
 * report if a `*.safetensors` pattern claimed it).
 */
export const renderLfsAttributes = (names: readonly string[]): string => [...names].sort().map((n) => `/${n} filter=lfs diff=lfs merge=lfs -text\n`).join('');

export const shortId = (oid: string): string => oid.slice(0, SHORT_ID_LENGTH);

/** One branch per plan, in the global repository and in every edge repository. */
export const planBranch = (planName: string, planId: string): string => `refs/heads/fedgit/${planName}-${shortId(planId)}`;
export const inferenceTag = (planName: string, planId: string): string => `refs/tags/inference-${planName}-${shortId(planId)}`;
/**
 * The aggregator's record of updates it refused for a plan, in the global repository, written as
 * soon as it refuses them — before any merge exists — so that edges and `fedgit status` see them.
 * A branch (not a custom ref) so that mirrors of a git server fetch it like any other.
 */
export const rejectionBranch = (planName: string, planId: string): string => `refs/heads/fedgit-rejected/${planName}-${shortId(planId)}`;

/** Secure aggregation: the aggregator's recovery requests (global repository) when an edge dropped out after others masked against it. */
export const recoveryBranch = (planName: string, planId: string): string => `refs/heads/fedgit-recovery/${planName}-${shortId(planId)}`;
/** Secure aggregation: an edge's revealed pair seeds (its own repository), one commit per recovery request it answered. */
export const revealBranch = (planName: string, planId: string): string => `refs/heads/fedgit-reveal/${planName}-${shortId(planId)}`;

export const REPO_DIRS = {
  plan: 'plan.git',
  global: 'global.git',
  edge: (edge: string) => `edge-${edge}.git`,
} as const;

export const TRAILER = {
  plan: 'Fedgit-Plan',
  planName: 'Fedgit-Plan-Name',
  round: 'Fedgit-Round',
  architecture: 'Fedgit-Architecture',
  edge: 'Fedgit-Edge',
  base: 'Fedgit-Base',
  datasetSize: 'Fedgit-Dataset-Size',
  metricsGlobal: 'Fedgit-Metrics-Global',
  metricsLocal: 'Fedgit-Metrics-Local',
  strategy: 'Fedgit-Strategy',
  merged: 'Fedgit-Merged',
  clipped: 'Fedgit-Clipped',
  rejected: 'Fedgit-Rejected',
  source: 'Fedgit-Source',
  signature: 'Fedgit-Signature',
  privacyEpsilon: 'Fedgit-Privacy-Epsilon',
  privacyDelta: 'Fedgit-Privacy-Delta',
  privacyAccountant: 'Fedgit-Privacy-Accountant',
  /** `sha256:<hex>` of the round's noise seed (the seed itself is never committed). */
  privacyNoise: 'Fedgit-Privacy-Noise-Commitment',
  /** Edge commit under secure aggregation: `fractional-bits=<f> clipped=<values clipped to the bound>`. */
  masked: 'Fedgit-Masked',
  /** Recovery request: an edge missing at the deadline, whose masks the survivors' seeds remove. */
  dropped: 'Fedgit-Dropped',
  /** Recovery request: `<edge> <commit>`, a masked update the round will merge. */
  survivor: 'Fedgit-Survivor',
  /** Reveal record: `<dropped edge> <64 hex>`, the pair seed shared with that edge. */
  revealedSeed: 'Fedgit-Revealed-Seed',
  /** Reveal record and merge: the recovery request answered / used. */
  recovery: 'Fedgit-Recovery',
  /** Merge: `<survivor> <reveal commit>`, the seeds the merge used. */
  reveal: 'Fedgit-Reveal',
} as const;

/** `Fedgit-Masked: fractional-bits=<f> clipped=<n>` */
export type MaskedEntry = { readonly fractionalBits: number; readonly clipped: number };
export const renderMasked = (m: MaskedEntry): string => `fractional-bits=${m.fractionalBits} clipped=${m.clipped}`;
export function parseMasked(value: string): MaskedEntry | undefined {
  const m = /^fractional-bits=(\d{1,2}) clipped=(\d{1,12})$/.exec(value);
  return m ? { fractionalBits: Number(m[1]), clipped: Number(m[2]) } : undefined;
}

/** `<name> <40 hex>`: a survivor's masked update in a recovery request, or a survivor's reveal in a merge. */
export type EdgeCommitEntry = { readonly edge: string; readonly commit: string };
export const renderEdgeCommit = (e: EdgeCommitEntry): string => `${e.edge} ${e.commit}`;
export function parseEdgeCommit(value: string): EdgeCommitEntry | undefined {
  const m = /^([a-z0-9][a-z0-9-]{0,62}) ([0-9a-f]{40})$/.exec(value);
  return m ? { edge: m[1]!, commit: m[2]! } : undefined;
}

/** `<dropped edge> <64 hex>` */
export type RevealedSeedEntry = { readonly dropped: string; readonly seedHex: string };
export const renderRevealedSeed = (e: RevealedSeedEntry): string => `${e.dropped} ${e.seedHex}`;
export function parseRevealedSeed(value: string): RevealedSeedEntry | undefined {
  const m = /^([a-z0-9][a-z0-9-]{0,62}) ([0-9a-f]{64})$/.exec(value);
  return m ? { dropped: m[1]!, seedHex: m[2]! } : undefined;
}

/** The privacy trailers of a DP merge, as written (strings, so audit compares them exactly). */
export type PrivacyEntry = { readonly epsilon: string; readonly delta: string; readonly accountant: string; readonly noiseCommitment: string };

export type Trailers = ReadonlyArray<readonly [string, string]>;

/** Longest trailer value written; what an edge controls is cut well below this where it enters (reasons: 300). */
const MAX_TRAILER_CHARS = 2_000;

/**
 * A commit message: subject, optional body, then `Key: value` trailers as `git interpret-trailers`
 * reads them. Every part is escaped (operator/text/untrusted.ts): no control character, NUL or
 * newline from a value can reach the commit object or forge another trailer.
 */
export function renderMessage(subject: string, trailers: Trailers, body?: string): string {
  const parts = [escapeUntrusted(subject, MAX_TRAILER_CHARS)];
  if (body) parts.push(body.trim().split('\n').map((line) => escapeUntrusted(line, MAX_TRAILER_CHARS)).join('\n'));
  parts.push(trailers.map(([k, v]) => `${k}: ${escapeUntrusted(v, MAX_TRAILER_CHARS)}`).join('\n'));
  return `${parts.join('\n\n')}\n`;
}

export function parseTrailers(message: string): Array<[string, string]> {
  const paragraphs = message.trimEnd().split(/\n\s*\n/);
  const last = paragraphs.length > 1 ? paragraphs[paragraphs.length - 1]! : '';
  const trailers: Array<[string, string]> = [];
  for (const line of last.split('\n')) {
    const m = /^([A-Za-z0-9-]+): (.*)$/.exec(line);
    if (m) trailers.push([m[1]!, m[2]!]);
  }
  return trailers;
}

export function trailer(trailers: Trailers, key: string): string | undefined {
  return trailers.find(([k]) => k === key)?.[1];
}

export function trailerAll(trailers: Trailers, key: string): string[] {
  return trailers.filter(([k]) => k === key).map(([, v]) => v);
}

/** `Fedgit-Merged: <edge> <commit> size=<n> weight=<w>` */
export type MergedEntry = { readonly edge: string; readonly commit: string; readonly datasetSize: number; readonly weight: number };

export function renderMerged(e: MergedEntry): string {
  return `${e.edge} ${e.commit} size=${e.datasetSize} weight=${e.weight}`;
}

export function parseMerged(value: string): MergedEntry {
  const m = /^(\S+) ([0-9a-f]{40}) size=(\d+) weight=(\S+)$/.exec(value);
  if (!m) throw new Error(`malformed ${TRAILER.merged} trailer: ${value}`);
  return { edge: m[1]!, commit: m[2]!, datasetSize: Number(m[3]), weight: Number(m[4]) };
}

/**
 * `Fedgit-Clipped: <edge> norm=<n>`: an update whose delta was scaled down to the plan's
 * `clip.maxNorm` before the strategy ran, with its original L2 norm (the shortest decimal that
 * reads back as the same float64, so audit compares it exactly).
 */
export type ClippedEntry = { readonly edge: string; readonly norm: number };

export const renderClipped = (e: ClippedEntry): string => `${e.edge} norm=${e.norm}`;

export function parseClipped(value: string): ClippedEntry {
  const m = /^(\S+) norm=(\S+)$/.exec(value);
  const norm = m ? Number(m[2]) : NaN;
  if (!m || !(norm >= 0) || !Number.isFinite(norm)) throw new Error(`malformed ${TRAILER.clipped} trailer: ${value}`);
  return { edge: m[1]!, norm };
}

/** A reason may quote what an edge wrote: escaped and bounded once, where it is made, so that re-rendering it changes nothing. */
export const boundReason = (reason: string): string => escapeUntrusted(reason, 300);

/** `Fedgit-Rejected: <edge> <commit> <reason>` */
export const renderRejected = (edge: string, commit: string, reason: string): string => `${edge} ${commit} ${reason}`;

export type RejectedEntry = { readonly edge: string; readonly commit: string; readonly reason: string };

export function parseRejected(value: string): RejectedEntry | undefined {
  const m = /^(\S+) ([0-9a-f]{40}) (.*)$/.exec(value);
  return m ? { edge: m[1]!, commit: m[2]!, reason: m[3]! } : undefined;
}

/** Scalar metrics as `key=value` pairs for a trailer; the full metrics live in metrics.json. */
export function renderMetricSummary(metrics: Record<string, unknown>): string {
  return Object.entries(metrics)
    .filter(([, v]) => typeof v === 'number' && Number.isFinite(v))
    .map(([k, v]) => `${k}=${Number((v as number).toPrecision(6))}`)
    .join(' ');
}

export function parseMetricSummary(value: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of (value ?? '').split(' ')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = Number(pair.slice(eq + 1));
  }
  return out;
}
