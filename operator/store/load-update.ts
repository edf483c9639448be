/**
 * Reading one edge update for a merge, and every check it must pass first: its own trailers,
 * a size the plan allows (before anything is allocated), its signature, a well-formed
 * checkpoint, and the plan's tensor names, shapes and finite values. The aggregator's merge
 * and `fedgit audit` both read updates through here: whole (`loadUpdate`), or a window at a
 * time without holding them (`streamUpdate`, the aggregator's checks and averaging merges).
 */
import { createHash } from 'node:crypto';
import type { TensorSpec, Update } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import type { ReadLimits } from '../git/objects.js';
import type { ContentSink } from '../git/content.js';
import { shortId, WEIGHTS_FILE } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { parseSafetensors, safetensorsReader, type SafetensorsVisitor } from '../checkpoint/safetensors.js';
import { verificationFailure } from '../trust/sign.js';
import { sha256Hex } from '../trust/statements.js';
import { firstNonFinite, maxCheckpointBytes, shapedUpdateProblem, updateProblem } from '../reconcile/validate-update.js';
import { FedgitError } from '../errors.js';
import { edgeStatementFor } from './federation.js';
import type { EdgeRecord } from './records.js';
import { isLfsTransportFailure } from '../remote/lfs-client.js';
import { storedLfsObjectSize } from '../lfs/object-store.js';

export type LoadedUpdate =
  | { readonly ok: true; readonly update: Update }
  | { readonly ok: false; readonly reason: string };

export type CheckedUpdate = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Where a streamed update's values go: tensor `name`'s values from index `at` on, in a view reused once the call returns. */
export type ValueSink = (name: string, at: number, values: Float32Array) => void;

/** Opens the sink for an update whose tensors have these shapes (in file order). */
export type OpenValues = (shapes: ReadonlyMap<string, readonly number[]>) => ValueSink;

/** Why an edge commit's signature is not acceptable under the plan, or null (also null when the plan lists no keys). */
export function signatureProblem(plan: CommittedPlan, record: EdgeRecord, weights: Uint8Array): string | null {
  return signatureProblemOf(plan, record, () => sha256Hex(weights));
}

/**
 * Why a commit's signature does not cover its weights, or null. In a plan with `lfs:`, weights
 * committed as a Git LFS pointer are judged by the pointer: its oid is the content's SHA-256, the
 * very hash the statement covers, so the object is not read (an old round's may have been pruned,
 * docs/lfs.md "Retention"). That proves who committed the pointer; whatever reads the object checks
 * the hash then. A pointer that the object in this store contradicts (another size) is refused, as
 * reading it would be. Without `lfs:` the content is read, as for a merge.
 */
export async function signatureProblemOfCommit(repo: Repository, plan: CommittedPlan, record: EdgeRecord, limits: ReadLimits): Promise<string | null> {
  if (!plan.plan.lfs) return signatureProblem(plan, record, await repo.readFile(record.oid, WEIGHTS_FILE, limits));
  const weights = await repo.readBlobOrPointer(record.oid, WEIGHTS_FILE, limits);
  if (weights.kind === 'blob') return signatureProblem(plan, record, weights.content);
  const { pointer } = weights;
  const storedBytes = await storedLfsObjectSize(repo.gitdir, pointer.oid);
  if (storedBytes !== null && storedBytes !== pointer.size) {
    return `${sourceOf(record)}: its LFS pointer says ${pointer.size} bytes, the object in this repository's store has ${storedBytes}`;
  }
  return signatureProblemOf(plan, record, () => pointer.oid);
}

function signatureProblemOf(plan: CommittedPlan, record: EdgeRecord, weightsSha256: () => string): string | null {
  const publicKey = publicKeyOf(plan, record);
  if (!publicKey) return null;
  if (!record.signature) return 'unsigned, but the plan requires signed updates';
  const failure = verificationFailure(edgeStatementFor(record, weightsSha256()), record.signature, publicKey);
  return failure ? `signature: ${failure}` : null;
}

const publicKeyOf = (plan: CommittedPlan, record: EdgeRecord) => plan.plan.edges.find((e) => e.name === record.edge)?.publicKey;

const sourceOf = (record: EdgeRecord) => `${WEIGHTS_FILE} of ${record.edge}@${shortId(record.oid)}`;

/** Reads and checks one update; a problem is a value (the reason), never an exception. */
export async function loadUpdate(repo: Repository, plan: CommittedPlan, record: EdgeRecord, spec: readonly TensorSpec[]): Promise<LoadedUpdate> {
  if (record.problem) return { ok: false, reason: record.problem };
  try {
    const bytes = await repo.readFile(record.oid, WEIGHTS_FILE, { maxBytes: maxCheckpointBytes(spec) });
    const unsigned = signatureProblem(plan, record, bytes);
    if (unsigned) return { ok: false, reason: unsigned };
    const { tensors } = parseSafetensors(bytes, sourceOf(record));
    const problem = updateProblem(tensors, spec, record.datasetSize);
    if (problem) return { ok: false, reason: problem };
    return { ok: true, update: { edge: record.edge, datasetSize: record.datasetSize, tensors } };
  } catch (e) {
    return refusal(e);
  }
}

/**
 * `loadUpdate` without holding the update: its weights are read a window at a time, checked as
 * they pass and, when `into` is given and the header fits the plan, handed to the sink it opens.
 * The verdict is loadUpdate's, reason for reason, decided in the same order once the last byte is
 * in; values handed over by an update that is then refused are the caller's to discard.
 */
export async function streamUpdate(repo: Repository, plan: CommittedPlan, record: EdgeRecord, spec: readonly TensorSpec[], into?: OpenValues): Promise<CheckedUpdate> {
  if (record.problem) return { ok: false, reason: record.problem };
  try {
    const check = updateCheck(plan, record, spec, into);
    await repo.streamFile(record.oid, WEIGHTS_FILE, { maxBytes: maxCheckpointBytes(spec) }, check.open);
    const reason = check.reason();
    return reason === null ? { ok: true } : { ok: false, reason };
  } catch (e) {
    return refusal(e);
  }
}

function refusal(e: unknown): { readonly ok: false; readonly reason: string } {
  // Not reaching the LFS server says nothing about the update: the merge waits and looks again.
  if (isLfsTransportFailure(e)) throw e;
  if (e instanceof FedgitError) return { ok: false, reason: e.message };
  throw e;
}

/**
 * What `loadUpdate` checks, learnt from the weights as they pass: their SHA-256 (when a signature
 * needs it), the header, and where each tensor's first non-finite value is. A malformed checkpoint
 * is noted, not thrown, so that a bad signature still comes first, as it does in loadUpdate.
 */
function updateCheck(plan: CommittedPlan, record: EdgeRecord, spec: readonly TensorSpec[], into: OpenValues | undefined) {
  const hash = publicKeyOf(plan, record) && record.signature ? createHash('sha256') : undefined;
  const nonFinite = new Map<string, number>();
  let shapes: ReadonlyMap<string, readonly number[]> | undefined;
  let sink: ValueSink | undefined;
  let corrupt: FedgitError | undefined;
  const visitor: SafetensorsVisitor = {
    layout(found) {
      shapes = found;
      if (into && shapedUpdateProblem(found, spec, record.datasetSize, () => -1) === null) sink = into(found);
    },
    values(name, at, values) {
      const bad = nonFinite.has(name) ? -1 : firstNonFinite(values);
      if (bad >= 0) nonFinite.set(name, at + bad);
      sink?.(name, at, values);
    },
  };
  const noting = (read: () => void) => {
    if (corrupt) return;
    try {
      read();
    } catch (e) {
      if (!(e instanceof FedgitError)) throw e;
      corrupt = e;
    }
  };
  return {
    open(size: number): ContentSink {
      let reader: (bytes: Uint8Array) => void = () => undefined;
      noting(() => (reader = safetensorsReader(size, sourceOf(record), visitor)));
      return (bytes) => {
        hash?.update(bytes);
        noting(() => reader(bytes));
      };
    },
    reason(): string | null {
      const unsigned = signatureProblemOf(plan, record, () => hash!.digest('hex'));
      if (unsigned) return unsigned;
      if (corrupt) return corrupt.message;
      if (!shapes) return `${sourceOf(record)}: ends before its header`;
      return shapedUpdateProblem(shapes, spec, record.datasetSize, (name) => nonFinite.get(name) ?? -1);
    },
  };
}
