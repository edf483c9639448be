/**
 * A server optimiser's state in the global commit: `optimiser-state.safetensors` beside the
 * weights, float32 like them (written by the one safetensors codec, which checks every offset when
 * read back), with the plan, round, strategy and step count in its metadata. Each merge reads the
 * state of the commit it builds on, so a restarted aggregator resumes exactly there and
 * `fedgit audit` recomputes the next state from the same bytes. Round 0 holds none: the first
 * step starts from zero state.
 */
import type { StrategyState } from '../contracts.js';
import { CheckpointCorrupt } from '../errors.js';
import { renderSafetensors, parseSafetensors } from '../checkpoint/safetensors.js';
import { shortId } from '../git/names.js';
import type { Repository } from '../git/repository.js';
import type { GlobalRecord } from './records.js';

export const STATE_FILE = 'optimiser-state.safetensors';

export type StateMeta = { readonly planId: string; readonly round: number; readonly strategy: string };

export function stateBytes(state: StrategyState, meta: StateMeta): Buffer {
  return renderSafetensors(state.tensors, { 'fedgit.plan': meta.planId, 'fedgit.round': String(meta.round), 'fedgit.strategy': meta.strategy, 'fedgit.step': String(state.step) });
}

/**
 * The raw state file of a commit, or null when it has none. Asked of the tree first: a state whose
 * LFS object is missing (pruned) is an error naming the object, never read as "no state".
 */
export async function readStateFile(repo: Repository, commit: string): Promise<Buffer | null> {
  if (!(await repo.hasFile(commit, STATE_FILE))) return null;
  return repo.readFile(commit, STATE_FILE);
}

export function parseState(bytes: Uint8Array, source: string): StrategyState {
  const { tensors, metadata } = parseSafetensors(bytes, source);
  const step = metadata['fedgit.step'];
  if (step === undefined || !/^\d{1,9}$/.test(step)) throw new CheckpointCorrupt(`${source}: fedgit.step is not a step count`, { source });
  return { step: Number(step), tensors };
}

/**
 * The state a merge on top of `base` starts from: none after round 0, else the one `base` stores.
 * A later global commit without it cannot be resumed from (refused, never restarted from zero).
 */
export async function readStateAfter(repo: Repository, base: GlobalRecord): Promise<StrategyState | null> {
  if (base.round === 0) return null;
  const bytes = await readStateFile(repo, base.oid);
  const source = `${STATE_FILE} of ${shortId(base.oid)} (round ${base.round})`;
  if (!bytes) throw new CheckpointCorrupt(`global commit ${shortId(base.oid)} (round ${base.round}) has no ${STATE_FILE}; a server optimiser cannot take its next step without it`, { commit: base.oid });
  return parseState(bytes, source);
}
