/**
 * The exact texts that edges and the aggregator sign. Pure.
 *
 * A statement is versioned, line-based ASCII: a header line naming its kind
 * and version, then one `key value` line per field in a fixed order, each line
 * ending in `\n`. Every field is validated so that no value can contain a
 * newline (or, where a line holds several values, a space): one text means
 * exactly one set of fields. Merged updates stay in the order given.
 */
import { createHash } from 'node:crypto';
import { NAME_PATTERN } from '../config/names.js';
import { StatementInvalid } from './errors.js';

export const EDGE_STATEMENT_HEADER = 'fedgit-edge-update v1';
export const MERGE_STATEMENT_HEADER = 'fedgit-merge v1';

export type EdgeStatement = {
  readonly planId: string;
  readonly round: number;
  readonly edge: string;
  readonly base: string;
  readonly weightsSha256: string;
  readonly datasetSize: number;
  readonly architecture: string;
};

export type MergedUpdate = { readonly edge: string; readonly commit: string; readonly datasetSize: number; readonly weight: number };

export type MergeStatement = {
  readonly planId: string;
  readonly round: number;
  /** The previous global commit; `null` only for a commit without parent (round 0). */
  readonly parent: string | null;
  readonly weightsSha256: string;
  readonly strategy: string;
  readonly merged: readonly MergedUpdate[];
};

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** Printable ASCII, inner spaces allowed, no leading or trailing space, at most 200 characters. */
const TEXT = /^[\x21-\x7e](?:[\x20-\x7e]{0,198}[\x21-\x7e])?$/;

function show(value: unknown): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

function bad(field: string, value: unknown, rule: string): StatementInvalid {
  return new StatementInvalid(`statement field ${field} ${show(value)} ${rule}`, { field });
}

function oid(field: string, value: unknown): string {
  if (typeof value !== 'string' || !OID.test(value)) throw bad(field, value, 'must be a full lowercase git object id');
  return value;
}

function sha256(field: string, value: unknown): string {
  if (typeof value !== 'string' || !SHA256.test(value)) throw bad(field, value, 'must be 64 lowercase hex digits');
  return value;
}

function count(field: string, value: unknown): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(field, value, 'must be a non-negative integer');
  return String(value);
}

function name(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) throw bad(field, value, 'must be 1–63 lowercase letters, digits or dashes');
  return value;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string' || !TEXT.test(value)) throw bad(field, value, 'must be 1–200 printable ASCII characters without newlines or surrounding spaces');
  return value;
}

/** A finite number in JavaScript's shortest round-trip form (the same form as the `Fedgit-Merged` trailer). */
function weight(field: string, value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(field, value, 'must be a finite number');
  return String(Object.is(value, -0) ? 0 : value);
}

const lines = (rows: readonly string[]): string => rows.map((r) => `${r}\n`).join('');

export function renderEdgeStatement(s: EdgeStatement): string {
  return lines([
    EDGE_STATEMENT_HEADER,
    `plan ${oid('planId', s.planId)}`,
    `round ${count('round', s.round)}`,
    `edge ${name('edge', s.edge)}`,
    `architecture ${text('architecture', s.architecture)}`,
    `base ${oid('base', s.base)}`,
    `weights-sha256 ${sha256('weightsSha256', s.weightsSha256)}`,
    `dataset-size ${count('datasetSize', s.datasetSize)}`,
  ]);
}

export function renderMergeStatement(s: MergeStatement): string {
  if (!Array.isArray(s.merged)) throw bad('merged', s.merged, 'must be a list');
  const seen = new Set<string>();
  const merged = s.merged.map((m, i) => {
    const at = `merged[${i}]`;
    const edge = name(`${at}.edge`, m.edge);
    if (seen.has(edge)) throw bad(`${at}.edge`, edge, 'appears twice');
    seen.add(edge);
    return `update ${edge} ${oid(`${at}.commit`, m.commit)} size=${count(`${at}.datasetSize`, m.datasetSize)} weight=${weight(`${at}.weight`, m.weight)}`;
  });
  return lines([
    MERGE_STATEMENT_HEADER,
    `plan ${oid('planId', s.planId)}`,
    `round ${count('round', s.round)}`,
    `parent ${s.parent === null ? '-' : oid('parent', s.parent)}`,
    `weights-sha256 ${sha256('weightsSha256', s.weightsSha256)}`,
    `strategy ${text('strategy', s.strategy)}`,
    `merged ${merged.length}`,
    ...merged,
  ]);
}
