/** What fedgit reads back from its commits: pure parsing of trailers into records. */
import type { Commit } from '../git/repository.js';
import {
  TRAILER, trailer, trailerAll, parseClipped, parseEdgeCommit, parseMasked, parseMerged, parseMetricSummary, type ClippedEntry, type EdgeCommitEntry, type MaskedEntry, type MergedEntry, type PrivacyEntry,
} from '../git/names.js';

export type GlobalRecord = {
  readonly oid: string;
  readonly parent: string | undefined;
  readonly planId: string;
  readonly round: number;
  readonly architecture: string;
  readonly strategy: string | undefined;
  readonly merged: readonly MergedEntry[];
  /** Updates scaled down to the plan's `clip.maxNorm` before the strategy ran, with their original norms. */
  readonly clipped?: readonly ClippedEntry[];
  /** A DP merge's privacy trailers (any that are present; a missing one reads as ''). */
  readonly privacy?: PrivacyEntry;
  readonly rejected: readonly string[];
  /** A secure merge after a dropout: the recovery request it answered and the survivors' reveal records. */
  readonly recovery?: { readonly request: string; readonly reveals: readonly EdgeCommitEntry[] };
  readonly source: string | undefined;
  readonly signature: string | undefined;
  readonly timeMs: number;
};

export type EdgeRecord = {
  readonly oid: string;
  readonly edge: string;
  readonly planId: string;
  readonly round: number;
  readonly architecture: string;
  readonly base: string;
  readonly datasetSize: number;
  readonly metricsGlobal: Record<string, number>;
  readonly metricsLocal: Record<string, number>;
  readonly signature: string | undefined;
  /** Secure aggregation: the commit holds a masked fixed-point update (U64), not a model. */
  readonly masked?: MaskedEntry;
  /** When the commit was made (committer date). */
  readonly timeMs: number;
  /** When the edge began training it (author date; fedgit edges write it, git tools show it as the author date). */
  readonly startedMs: number;
  /** Why the commit's own trailers make it unacceptable (e.g. a single-valued trailer given twice), or undefined. */
  readonly problem?: string;
};

/** Trailers an edge commit must carry at most once: `git log` would show both values, fedgit would read one. */
const SINGLE_VALUED = [TRAILER.plan, TRAILER.round, TRAILER.architecture, TRAILER.edge, TRAILER.base, TRAILER.datasetSize, TRAILER.metricsGlobal, TRAILER.metricsLocal, TRAILER.signature, TRAILER.masked];

function duplicatedTrailer(trailers: Commit['trailers']): string | undefined {
  return SINGLE_VALUED.find((key) => trailerAll(trailers, key).length > 1);
}

function roundOf(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

function privacyOf(trailers: Commit['trailers']): { privacy?: PrivacyEntry } {
  const keys = [TRAILER.privacyEpsilon, TRAILER.privacyDelta, TRAILER.privacyAccountant, TRAILER.privacyNoise];
  if (!keys.some((key) => trailer(trailers, key) !== undefined)) return {};
  const [epsilon, delta, accountant, noiseCommitment] = keys.map((key) => trailer(trailers, key) ?? '') as [string, string, string, string];
  return { privacy: { epsilon, delta, accountant, noiseCommitment } };
}

function recoveryOf(trailers: Commit['trailers']): { recovery?: GlobalRecord['recovery'] } {
  const request = trailer(trailers, TRAILER.recovery);
  if (request === undefined) return {};
  const reveals = trailerAll(trailers, TRAILER.reveal).map(parseEdgeCommit).filter((e): e is EdgeCommitEntry => e !== undefined);
  return { recovery: { request, reveals } };
}

/** An edge commit's `Fedgit-Masked` trailer; a malformed one makes the commit unacceptable. */
function maskedOf(trailers: Commit['trailers']): { masked?: MaskedEntry; problem?: string } {
  const value = trailer(trailers, TRAILER.masked);
  if (value === undefined) return {};
  const masked = parseMasked(value);
  return masked ? { masked } : { problem: `malformed ${TRAILER.masked} trailer` };
}

export function parseGlobalRecord(c: Commit): GlobalRecord | undefined {
  const planId = trailer(c.trailers, TRAILER.plan);
  const round = roundOf(trailer(c.trailers, TRAILER.round));
  if (!planId || round === undefined) return undefined;
  let merged: MergedEntry[];
  let clipped: ClippedEntry[];
  try {
    merged = trailerAll(c.trailers, TRAILER.merged).map(parseMerged);
    clipped = trailerAll(c.trailers, TRAILER.clipped).map(parseClipped);
  } catch {
    return undefined;
  }
  return {
    oid: c.oid,
    parent: c.parents[0],
    planId,
    round,
    architecture: trailer(c.trailers, TRAILER.architecture) ?? '',
    strategy: trailer(c.trailers, TRAILER.strategy),
    merged,
    clipped,
    ...privacyOf(c.trailers),
    ...recoveryOf(c.trailers),
    rejected: trailerAll(c.trailers, TRAILER.rejected),
    source: trailer(c.trailers, TRAILER.source),
    signature: trailer(c.trailers, TRAILER.signature),
    timeMs: c.committer.timestamp * 1000,
  };
}

export function parseEdgeRecord(c: Commit): EdgeRecord | undefined {
  const planId = trailer(c.trailers, TRAILER.plan);
  const round = roundOf(trailer(c.trailers, TRAILER.round));
  const edge = trailer(c.trailers, TRAILER.edge);
  const base = trailer(c.trailers, TRAILER.base);
  const datasetSize = roundOf(trailer(c.trailers, TRAILER.datasetSize));
  if (!planId || round === undefined || !edge || !base || !/^[0-9a-f]{40}$/.test(base) || datasetSize === undefined) return undefined;
  const duplicate = duplicatedTrailer(c.trailers);
  const masked = maskedOf(c.trailers);
  return {
    ...masked,
    ...(duplicate ? { problem: `the commit has more than one ${duplicate} trailer` } : {}),
    oid: c.oid,
    edge,
    planId,
    round,
    architecture: trailer(c.trailers, TRAILER.architecture) ?? '',
    base,
    datasetSize,
    metricsGlobal: parseMetricSummary(trailer(c.trailers, TRAILER.metricsGlobal)),
    metricsLocal: parseMetricSummary(trailer(c.trailers, TRAILER.metricsLocal)),
    signature: trailer(c.trailers, TRAILER.signature),
    timeMs: c.committer.timestamp * 1000,
    startedMs: c.author.timestamp * 1000,
  };
}
