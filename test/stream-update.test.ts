/**
 * An update read a window at a time (`streamUpdate`, the aggregator's checks and averaging merges)
 * gets the verdict of the same update read whole (`loadUpdate`), reason for reason, from a small
 * git blob, a big one and an LFS object; its values are the update's; and a merge fed that way has
 * the bytes of the merge of updates in memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { tempDir, toyPlan } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { objectId } from '../operator/git/objects.js';
import { lfsObjectPath } from '../operator/lfs/object-store.js';
import { renderMessage, TRAILER, WEIGHTS_FILE } from '../operator/git/names.js';
import { renderSafetensors } from '../operator/checkpoint/safetensors.js';
import { parseEdgeRecord, type EdgeRecord } from '../operator/store/records.js';
import { loadUpdate, streamUpdate, type OpenValues } from '../operator/store/load-update.js';
import { computeMerge, streamMerge, type UpdateSource } from '../operator/reconcile/merge.js';
import { parsePlan, type CommittedPlan } from '../operator/plan/plan.js';
import { renderEdgeStatement, sha256Hex } from '../operator/trust/statements.js';
import { generateKeyPair, parsePrivateKey } from '../operator/trust/keys.js';
import { sign } from '../operator/trust/sign.js';
import { strategies } from '../aggregator-app/registry.js';
import type { Tensors, TensorSpec, Update } from '../operator/contracts.js';

/** Above the 4 MiB read in one call: stored blocks and 1 MiB windows, which no tensor length divides. */
const BIG_SPEC: TensorSpec[] = [{ name: 'conv', shape: [3, 400_001] }, { name: 'bias', shape: [7] }];
const SMALL_SPEC: TensorSpec[] = [{ name: 'conv', shape: [3, 5] }, { name: 'bias', shape: [7] }];
const STORAGES = [
  { what: 'a small git blob, read whole', spec: SMALL_SPEC, lfs: false },
  { what: 'a big git blob, read a window at a time', spec: BIG_SPEC, lfs: false },
  { what: 'an LFS object, read a window at a time', spec: BIG_SPEC, lfs: true },
];

const KEY = generateKeyPair();
const OTHER_KEY = generateKeyPair();
const BASE = 'b'.repeat(40);
const author = { name: 'fedgit hospital', email: 'h@fedgit.invalid', timestamp: 1_700_000_000 };

function committedPlan(yaml: string): CommittedPlan {
  return { id: 'a'.repeat(40), plan: parsePlan(yaml, 'plan.yaml'), text: yaml };
}

const SIGNED_PLAN = committedPlan(toyPlan().replace('edges: [hospital-a, hospital-b]', `edges:\n  - { name: hospital-a, publicKey: '${KEY.publicKey}' }\n  - { name: hospital-b, publicKey: '${OTHER_KEY.publicKey}' }`));

/** Finite values of every magnitude, different for every seed. */
function model(spec: readonly TensorSpec[], seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  return new Map(spec.map((s) => {
    const count = s.shape.reduce((n, d) => n * d, 1);
    return [s.name, { shape: [...s.shape], data: Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed) * 10 ** ((i % 7) - 3)) }];
  }));
}

/** A safetensors file from a raw header text and data bytes. */
function rawSafetensors(header: string, data: Uint8Array): Buffer {
  const json = Buffer.from(header, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, data]);
}

type Case = {
  readonly what: string;
  /** What loadUpdate says (null: accepted), so that each case tests what it names. */
  readonly reason: RegExp | null;
  readonly edge?: string;
  readonly signature?: 'right' | 'wrong' | 'none';
  readonly datasetSize?: number;
  readonly weights?: (spec: readonly TensorSpec[]) => Buffer;
  readonly damage?: boolean;
};

const last = (spec: readonly TensorSpec[]) => 3 * spec[0]!.shape[1]! - 1;

const CASES: Case[] = [
  { what: 'a good signed update', reason: null },
  {
    what: 'a NaN as conv\'s last value', reason: /tensor conv holds a non-finite value at index \d+/,
    weights: (spec) => { const m = model(spec, 1); m.get('conv')!.data[last(spec)] = NaN; return renderSafetensors(m); },
  },
  {
    what: 'an infinity in conv (first in the plan) and a wrong shape of bias (first in the file)', reason: /tensor conv holds a non-finite value at index 5$/,
    weights: (spec) => { const m = model(spec, 1); m.get('conv')!.data[5] = Infinity; m.get('bias')!.shape = [1, 7]; return renderSafetensors(m); },
  },
  { what: 'an extra tensor', reason: /unexpected tensor extra/, weights: (spec) => renderSafetensors(new Map([...model(spec, 1), ['extra', { shape: [2], data: Float32Array.of(1, 2) }]])) },
  { what: 'a missing tensor', reason: /missing tensor bias/, weights: (spec) => renderSafetensors(new Map([...model(spec, 1)].filter(([name]) => name !== 'bias'))) },
  { what: 'a header that is not JSON', reason: /header is not valid JSON/, weights: (spec) => rawSafetensors('{"conv": ', renderSafetensors(model(spec, 1)).subarray(8)) },
  { what: 'a header that is not JSON, wrongly signed', reason: /^signature: /, signature: 'wrong', weights: (spec) => rawSafetensors('{"conv": ', renderSafetensors(model(spec, 1)).subarray(8)) },
  { what: 'trailing bytes after the last tensor', reason: /4 trailing bytes after the last tensor/, weights: (spec) => Buffer.concat([renderSafetensors(model(spec, 1)), Buffer.alloc(4)]) },
  { what: 'no signature where the plan holds the edge\'s key', reason: /unsigned, but the plan requires signed updates/, signature: 'none' },
  { what: 'a signature by another key', reason: /^signature: /, signature: 'wrong' },
  { what: 'a dataset size of 0', reason: /dataset size 0 is not an integer/, datasetSize: 0 },
  { what: 'more bytes than the plan allows', reason: /announces \d+ bytes, more than the \d+ allowed here|is larger than the \d+ bytes allowed here/, weights: (spec) => renderSafetensors(new Map([...model(spec, 1), ['extra', { shape: [100_000], data: new Float32Array(100_000) }]])) },
  { what: 'a byte damaged on disk', reason: /does not hash to its name|not a valid zlib stream/, damage: true },
];

/** Commits the case's weights on their own (trailers signed as the case says) and returns the commit's record. */
async function commitCase(repo: Repository, c: Case, spec: readonly TensorSpec[], lfs: boolean): Promise<EdgeRecord> {
  const edge = c.edge ?? 'hospital-a';
  const weights = c.weights ? c.weights(spec) : renderSafetensors(model(spec, 1));
  const datasetSize = c.datasetSize ?? 100;
  const trailers: Array<[string, string]> = [[TRAILER.plan, SIGNED_PLAN.id], [TRAILER.round, '1'], [TRAILER.architecture, 'test/1'], [TRAILER.edge, edge], [TRAILER.base, BASE], [TRAILER.datasetSize, String(datasetSize)]];
  const signature = c.signature ?? 'right';
  if (signature !== 'none') {
    const statement = renderEdgeStatement({ planId: SIGNED_PLAN.id, round: 1, edge, base: BASE, weightsSha256: sha256Hex(weights), datasetSize, architecture: 'test/1' });
    trailers.push([TRAILER.signature, sign(statement, parsePrivateKey((signature === 'right' ? KEY : OTHER_KEY).privateKeyPem))]);
  }
  const oid = await repo.writeCommit({ files: { [WEIGHTS_FILE]: weights }, parents: [], message: renderMessage(`${edge}: ${c.what}`, trailers), author, ...(lfs ? { lfs: { minBytes: 0 } } : {}) });
  if (c.damage) await flipByte(lfs ? lfsObjectPath(repo.gitdir, createHash('sha256').update(weights).digest('hex')) : loosePath(repo.gitdir, objectId('blob', weights)));
  return parseEdgeRecord(await repo.readCommit(oid))!;
}

const loosePath = (gitdir: string, oid: string) => path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));

async function flipByte(file: string): Promise<void> {
  const bytes = await readFile(file);
  bytes[bytes.length - 100]! ^= 1;
  await chmod(file, 0o644);
  await writeFile(file, bytes);
}

/** Opens sinks that put an update's values together, tensor by tensor. */
function collector(): { into: OpenValues; values: Map<string, Float32Array> } {
  const values = new Map<string, Float32Array>();
  const into: OpenValues = (shapes) => {
    for (const [name, shape] of shapes) values.set(name, new Float32Array(shape.reduce((n, d) => n * d, 1)));
    return (name, at, chunk) => values.get(name)!.set(chunk, at);
  };
  return { into, values };
}

for (const storage of STORAGES) {
  test(`a streamed update gets loadUpdate's verdict, reason for reason: ${storage.what}`, async (t) => {
    const repo = await Repository.ensureBare(path.join(await tempDir(t), 'edge.git'));
    for (const c of CASES) {
      await t.test(c.what, async () => {
        const record = await commitCase(repo, c, storage.spec, storage.lfs);
        const loaded = await loadUpdate(repo, SIGNED_PLAN, record, storage.spec);
        if (c.reason) assert.match(loaded.ok ? 'accepted' : loaded.reason, c.reason);
        else assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason);
        const { into, values } = collector();
        assert.deepEqual(await streamUpdate(repo, SIGNED_PLAN, record, storage.spec, into), loaded.ok ? { ok: true } : { ok: false, reason: loaded.reason });
        assert.deepEqual(await streamUpdate(repo, SIGNED_PLAN, record, storage.spec), loaded.ok ? { ok: true } : { ok: false, reason: loaded.reason }, 'the same without a sink');
        if (loaded.ok) assert.deepEqual(values, new Map([...loaded.update.tensors].map(([name, tensor]) => [name, tensor.data])), 'the values handed over are the update\'s');
      });
    }
  });
}

const EDGES = ['hospital-c', 'hospital-a', 'hospital-b'];
const MERGE_PLAN = committedPlan(toyPlan({ edges: EDGES }));

/** One update per edge committed to `repo` (in git or LFS), their records, and the same updates read whole. */
async function updatesIn(repo: Repository, lfs: boolean): Promise<{ records: EdgeRecord[]; updates: Update[] }> {
  const records: EdgeRecord[] = [];
  const updates: Update[] = [];
  for (const [k, edge] of EDGES.entries()) {
    const record = await commitCase(repo, { what: `update ${k}`, reason: null, edge, signature: 'none', datasetSize: 10 + 37 * k, weights: (spec) => renderSafetensors(model(spec, 2 + k)) } as Case, BIG_SPEC, lfs);
    const loaded = await loadUpdate(repo, MERGE_PLAN, record, BIG_SPEC);
    assert.ok(loaded.ok);
    records.push(record);
    updates.push(loaded.update);
  }
  return { records, updates };
}

const streamingSources = (repo: Repository, records: readonly EdgeRecord[]): UpdateSource[] => records.map((record) => ({
  edge: record.edge,
  datasetSize: record.datasetSize,
  load: () => Promise.reject(new Error('read whole, though the merge could stream it')),
  stream: async (into) => (await streamUpdate(repo, MERGE_PLAN, record, BIG_SPEC, into)).ok,
}));

const bytes = (tensors: Tensors) => renderSafetensors(tensors);

for (const lfs of [false, true]) {
  test(`a merge fed updates a window at a time has the bytes of the merge of updates in memory (${lfs ? 'LFS' : 'git'})`, async (t) => {
    const repo = await Repository.ensureBare(path.join(await tempDir(t), 'edges.git'));
    const { records, updates } = await updatesIn(repo, lfs);
    const previous = model(BIG_SPEC, 99);
    for (const id of ['fedavg', 'fedadam']) {
      const strategy = strategies.get(id);
      const held = computeMerge(MERGE_PLAN.plan, strategy, updates, previous);
      const streamed = await streamMerge(MERGE_PLAN.plan, strategy, streamingSources(repo, records), async () => previous);
      assert.ok(streamed, id);
      assert.ok(bytes(streamed.tensors).equals(bytes(held.tensors)), `${id}: weights`);
      assert.deepEqual(streamed.weights, held.weights, `${id}: merge weights`);
      if (held.state) assert.ok(bytes(streamed.state!.tensors).equals(bytes(held.state.tensors)), `${id}: state`);
    }
  });
}

test('an update found damaged while it streams abandons the merge', async (t) => {
  const repo = await Repository.ensureBare(path.join(await tempDir(t), 'edges.git'));
  const { records } = await updatesIn(repo, false);
  const damaged = records.find((r) => r.edge === 'hospital-b')!;
  await flipByte(loosePath(repo.gitdir, objectId('blob', await repo.readFile(damaged.oid, WEIGHTS_FILE))));
  const merge = await streamMerge(MERGE_PLAN.plan, strategies.get('fedavg'), streamingSources(repo, records), async () => model(BIG_SPEC, 99));
  assert.equal(merge, null);
});
