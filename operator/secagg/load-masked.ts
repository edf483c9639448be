/**
 * Reading one masked update (secure aggregation) and every check it can pass without being
 * unmasked: its trailers, a size the plan allows (before anything is allocated), its signature,
 * a well-formed U64 checkpoint with the plan's tensor names and shapes, the plan's fixed-point
 * scale and a sane dataset size. Its values cannot be checked: they look uniformly random.
 */
import type { TensorSpec } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import { shortId, WEIGHTS_FILE, TRAILER } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { parseWordSafetensors, type WordTensors } from '../checkpoint/safetensors.js';
import { maxCheckpointBytes, MAX_DATASET_SIZE } from '../reconcile/validate-update.js';
import { FedgitError } from '../errors.js';
import { signatureProblem } from '../store/load-update.js';
import type { EdgeRecord } from '../store/records.js';
import { escapeUntrusted } from '../text/untrusted.js';

export type MaskedUpdate = { readonly edge: string; readonly datasetSize: number; readonly masked: WordTensors };
export type LoadedMasked = { readonly ok: true; readonly update: MaskedUpdate } | { readonly ok: false; readonly reason: string };

/** Why masked tensors do not fit the plan's spec (names and shapes), or null. */
export function maskedShapeProblem(tensors: WordTensors, spec: readonly TensorSpec[]): string | null {
  const expected = new Map(spec.map((s) => [s.name, s.shape]));
  for (const name of tensors.keys()) if (!expected.has(name)) return `unexpected tensor ${escapeUntrusted(name, 80)}`;
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) return `missing tensor ${name}`;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) return `tensor ${name} has shape [${t.shape.join(',')}], expected [${shape.join(',')}]`;
  }
  return null;
}

export async function loadMaskedUpdate(repo: Repository, plan: CommittedPlan, record: EdgeRecord, spec: readonly TensorSpec[]): Promise<LoadedMasked> {
  if (record.problem) return { ok: false, reason: record.problem };
  const fractionalBits = plan.plan.secureAggregation?.fractionalBits;
  if (!record.masked) return { ok: false, reason: `not masked (no ${TRAILER.masked} trailer), but the plan requires secure aggregation` };
  if (record.masked.fractionalBits !== fractionalBits) return { ok: false, reason: `masked with ${record.masked.fractionalBits} fractional bits, the plan says ${fractionalBits}` };
  if (!Number.isSafeInteger(record.datasetSize) || record.datasetSize < 1 || record.datasetSize > MAX_DATASET_SIZE) return { ok: false, reason: `dataset size ${record.datasetSize} is not an integer in 1..${MAX_DATASET_SIZE}` };
  try {
    // U64 takes twice the bytes of F32; the header allowance doubles with it.
    const bytes = await repo.readFile(record.oid, WEIGHTS_FILE, { maxBytes: 2 * maxCheckpointBytes(spec) });
    const unsigned = signatureProblem(plan, record, bytes);
    if (unsigned) return { ok: false, reason: unsigned };
    const { tensors } = parseWordSafetensors(bytes, `${WEIGHTS_FILE} of ${record.edge}@${shortId(record.oid)}`);
    const problem = maskedShapeProblem(tensors, spec);
    if (problem) return { ok: false, reason: problem };
    return { ok: true, update: { edge: record.edge, datasetSize: record.datasetSize, masked: tensors } };
  } catch (e) {
    if (e instanceof FedgitError) return { ok: false, reason: e.message };
    throw e;
  }
}
