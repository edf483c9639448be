/**
 * Reading one edge update for a merge, and every check it must pass first: its own trailers,
 * a size the plan allows (before anything is allocated), its signature, a well-formed
 * checkpoint, and the plan's tensor names, shapes and finite values. The aggregator's merge
 * and `fedgit audit` both read updates through here.
 */
import type { TensorSpec, Update } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import { shortId, WEIGHTS_FILE } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { parseSafetensors } from '../checkpoint/safetensors.js';
import { verificationFailure } from '../trust/sign.js';
import { maxCheckpointBytes, updateProblem } from '../reconcile/validate-update.js';
import { FedgitError } from '../errors.js';
import { edgeStatementOf } from './federation.js';
import type { EdgeRecord } from './records.js';
import { isLfsTransportFailure } from '../remote/lfs-client.js';

export type LoadedUpdate =
  | { readonly ok: true; readonly update: Update }
  | { readonly ok: false; readonly reason: string };

/** Why an edge commit's signature is not acceptable under the plan, or null (also null when the plan lists no keys). */
export function signatureProblem(plan: CommittedPlan, record: EdgeRecord, weights: Uint8Array): string | null {
  const publicKey = plan.plan.edges.find((e) => e.name === record.edge)?.publicKey;
  if (!publicKey) return null;
  if (!record.signature) return 'unsigned, but the plan requires signed updates';
  const failure = verificationFailure(edgeStatementOf(record, weights), record.signature, publicKey);
  return failure ? `signature: ${failure}` : null;
}

/** Reads and checks one update; a problem is a value (the reason), never an exception. */
export async function loadUpdate(repo: Repository, plan: CommittedPlan, record: EdgeRecord, spec: readonly TensorSpec[]): Promise<LoadedUpdate> {
  if (record.problem) return { ok: false, reason: record.problem };
  try {
    const bytes = await repo.readFile(record.oid, WEIGHTS_FILE, { maxBytes: maxCheckpointBytes(spec) });
    const unsigned = signatureProblem(plan, record, bytes);
    if (unsigned) return { ok: false, reason: unsigned };
    const { tensors } = parseSafetensors(bytes, `${WEIGHTS_FILE} of ${record.edge}@${shortId(record.oid)}`);
    const problem = updateProblem(tensors, spec, record.datasetSize);
    if (problem) return { ok: false, reason: problem };
    return { ok: true, update: { edge: record.edge, datasetSize: record.datasetSize, tensors } };
  } catch (e) {
    // Not reaching the LFS server says nothing about the update: the merge waits and looks again.
    if (isLfsTransportFailure(e)) throw e;
    if (e instanceof FedgitError) return { ok: false, reason: e.message };
    throw e;
  }
}
