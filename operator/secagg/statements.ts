/**
 * The texts signed for secure aggregation's records, in the format of operator/trust/statements.ts
 * (a versioned header, then one `key value` line per field). Pure. Every value is checked to be a
 * name, a commit id or a hex seed, so no field can carry a newline or a space.
 */
import { NAME_PATTERN } from '../config/names.js';
import { StatementInvalid } from '../trust/errors.js';

export const RECOVERY_STATEMENT_HEADER = 'fedgit-recovery-request v1';
export const REVEAL_STATEMENT_HEADER = 'fedgit-seed-reveal v1';

const OID = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new StatementInvalid(`${what} ${JSON.stringify(value.slice(0, 80))} is not valid in a signed statement`, { field: what });
  return value;
}

export type RecoveryStatement = {
  readonly planId: string;
  readonly round: number;
  readonly base: string;
  readonly dropped: readonly string[];
  readonly survivors: ReadonlyArray<{ readonly edge: string; readonly commit: string }>;
};

export function renderRecoveryStatement(s: RecoveryStatement): string {
  const lines = [RECOVERY_STATEMENT_HEADER, `plan ${checked(s.planId, OID, 'plan')}`, `round ${s.round}`, `base ${checked(s.base, OID, 'base')}`];
  for (const d of s.dropped) lines.push(`dropped ${checked(d, NAME_PATTERN, 'edge')}`);
  for (const v of s.survivors) lines.push(`survivor ${checked(v.edge, NAME_PATTERN, 'edge')} ${checked(v.commit, OID, 'commit')}`);
  return `${lines.join('\n')}\n`;
}

export type RevealStatement = {
  readonly planId: string;
  readonly round: number;
  readonly edge: string;
  readonly request: string;
  readonly seeds: ReadonlyArray<{ readonly dropped: string; readonly seedHex: string }>;
};

export function renderRevealStatement(s: RevealStatement): string {
  const lines = [REVEAL_STATEMENT_HEADER, `plan ${checked(s.planId, OID, 'plan')}`, `round ${s.round}`, `edge ${checked(s.edge, NAME_PATTERN, 'edge')}`, `request ${checked(s.request, OID, 'request')}`];
  for (const seed of s.seeds) lines.push(`seed ${checked(seed.dropped, NAME_PATTERN, 'edge')} ${checked(seed.seedHex, HEX64, 'seed')}`);
  return `${lines.join('\n')}\n`;
}
