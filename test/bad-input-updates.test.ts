/**
 * Bad edge commits, crafted in real repositories with fedgit's own writers or raw objects:
 * corrupt, truncated or lying checkpoints, wrong shapes, NaN, missing or garbage trailers,
 * a corrupt edge branch. The aggregator stays up: a bad update is rejected and recorded in
 * the merge's Fedgit-Rejected trailer (or, when it is not a fedgit update at all, never
 * merged), the round merges with the good edges, every merge audits, and the aggregator
 * writes nothing to the edge repositories.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import zlib from 'node:zlib';
import { tempDir, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { fsckStrict, gitState, gitStateChanges, globalLog, inProcessAggregator, lockFiles, Tally, whereUnder } from './helpers/chaos.js';
import { Repository } from '../operator/git/repository.js';
import { writeObject } from '../operator/git/objects.js';
import { renderTree } from '../operator/git/commit-object.js';
import { planBranch, renderMessage, renderMetricSummary, TRAILER, WEIGHTS_FILE, METRICS_FILE } from '../operator/git/names.js';
import { commitEdgeUpdate, readGlobalHead, readRecordedRejections } from '../operator/store/federation.js';
import { renderSafetensors } from '../operator/checkpoint/safetensors.js';
import { auditCommit } from '../operator/commands/audit.js';
import { builtinRegistries } from '../bin/registries.js';
import type { Tensors } from '../operator/contracts.js';

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
const FEATURES = 8;

/** A safetensors file from a raw header object and data bytes (for headers that lie). */
function rawSafetensors(header: unknown, data: Buffer, headerLength?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

const tensors = (bias: number[], weight: number[], shape = [1, weight.length]): Tensors => new Map([
  ['linear.bias', { shape: [1], data: Float32Array.from(bias) }],
  ['linear.weight', { shape, data: Float32Array.from(weight) }],
]);
const ok = () => tensors([0.1], Array.from({ length: FEATURES }, (_, i) => i / 100));
const good = () => renderSafetensors(ok());

type Bad =
  /** A fedgit update whose weights (or their storage) are bad: must be rejected and recorded. */
  | { what: string; kind: 'rejected'; reason: RegExp; weights?: () => Buffer; trailers?: Record<string, string>; raw?: 'missing-file' | 'missing-blob' | 'corrupt-blob' | 'lying-object-size' }
  /** Not a fedgit update of this edge for this round: never merged, the round goes on without it. */
  | { what: string; kind: 'ignored'; trailers?: Record<string, string | null>; message?: string }
  /** The edge's branch itself is broken: the edge counts as not pushed, the others still merge. */
  | { what: string; kind: 'broken-branch'; breakBranch: 'blob' | 'missing-parent' | 'garbage-ref' | 'corrupt-commit' };

const CASES: Bad[] = [
  { what: 'truncated checkpoint', kind: 'rejected', reason: /weights\.safetensors|trailing|outside|short|exceeds/, weights: () => good().subarray(0, good().length - 6) },
  { what: 'empty checkpoint', kind: 'rejected', reason: /too short/, weights: () => Buffer.alloc(0) },
  { what: 'header length larger than the file', kind: 'rejected', reason: /header length \d+ exceeds the file/, weights: () => { const b = Buffer.from(good()); b.writeBigUInt64LE(2n ** 60n, 0); return b; } },
  { what: 'header length 2^64-1', kind: 'rejected', reason: /header length \d+ exceeds the file/, weights: () => { const b = Buffer.from(good()); b.writeBigUInt64LE(2n ** 64n - 1n, 0); return b; } },
  { what: 'header that is not JSON', kind: 'rejected', reason: /header is not valid JSON/, weights: () => rawSafetensors('{"linear.bias": {"dtype": "F32", ', Buffer.alloc(36)) },
  { what: 'header that is a JSON list', kind: 'rejected', reason: /not a JSON object/, weights: () => rawSafetensors([1, 2], Buffer.alloc(36)) },
  { what: 'offsets beyond the data', kind: 'rejected', reason: /data_offsets \[\d+, \d+\] fall outside/, weights: () => rawSafetensors({ 'linear.bias': { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, 'linear.weight': { dtype: 'F32', shape: [1, 8], data_offsets: [4, 4_000_000] } }, Buffer.alloc(36)) },
  { what: 'overlapping offsets', kind: 'rejected', reason: /overlap or gap/, weights: () => rawSafetensors({ 'linear.bias': { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, 'linear.weight': { dtype: 'F32', shape: [1, 8], data_offsets: [0, 32] } }, Buffer.alloc(36)) },
  { what: 'shape that lies about the size', kind: 'rejected', reason: /shape \[1, 9\] needs 36 bytes, offsets give 32/, weights: () => rawSafetensors({ 'linear.bias': { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, 'linear.weight': { dtype: 'F32', shape: [1, 9], data_offsets: [4, 36] } }, Buffer.alloc(36)) },
  { what: 'negative offsets', kind: 'rejected', reason: /data_offsets is not two non-negative integers/, weights: () => rawSafetensors({ 'linear.bias': { dtype: 'F32', shape: [1], data_offsets: [-4, 0] }, 'linear.weight': { dtype: 'F32', shape: [1, 8], data_offsets: [4, 36] } }, Buffer.alloc(36)) },
  { what: 'astronomic shape', kind: 'rejected', reason: /shape|offsets/, weights: () => rawSafetensors({ 'linear.bias': { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, 'linear.weight': { dtype: 'F32', shape: [1e15, 1e15], data_offsets: [4, 36] } }, Buffer.alloc(36)) },
  { what: 'float16 dtype', kind: 'rejected', reason: /dtype "F16" is not F32/, weights: () => rawSafetensors({ 'linear.bias': { dtype: 'F16', shape: [1], data_offsets: [0, 2] }, 'linear.weight': { dtype: 'F32', shape: [1, 8], data_offsets: [2, 34] } }, Buffer.alloc(34)) },
  { what: 'weights of the wrong shape', kind: 'rejected', reason: /tensor linear\.weight has shape \[1,7\], expected \[1,8\]/, weights: () => renderSafetensors(tensors([0], [1, 2, 3, 4, 5, 6, 7])) },
  { what: 'weights transposed', kind: 'rejected', reason: /tensor linear\.weight has shape \[8,1\], expected \[1,8\]/, weights: () => renderSafetensors(tensors([0], [1, 2, 3, 4, 5, 6, 7, 8], [8, 1])) },
  { what: 'NaN in the weights', kind: 'rejected', reason: /linear\.weight holds a non-finite value at index 3/, weights: () => renderSafetensors(tensors([0], [0, 0, 0, NaN, 0, 0, 0, 0])) },
  { what: 'Infinity in the bias', kind: 'rejected', reason: /linear\.bias holds a non-finite value at index 0/, weights: () => renderSafetensors(tensors([Infinity], [0, 0, 0, 0, 0, 0, 0, 0])) },
  { what: 'an extra tensor', kind: 'rejected', reason: /unexpected tensor evil\.payload/, weights: () => renderSafetensors(new Map([...ok(), ['evil.payload', { shape: [2], data: Float32Array.of(1, 2) }]])) },
  { what: 'a missing tensor', kind: 'rejected', reason: /missing tensor linear\.bias/, weights: () => renderSafetensors(new Map([...ok()].filter(([n]) => n !== 'linear.bias'))) },
  { what: 'an oversized checkpoint (32 MB of weights)', kind: 'rejected', reason: /announces 32\d{6} bytes, more than the \d+ allowed/, weights: () => renderSafetensors(tensors([0], Array.from({ length: 8_000_000 }, () => 0.5))) },
  { what: 'dataset size 0', kind: 'rejected', reason: /dataset size 0 is not an integer/, trailers: { [TRAILER.datasetSize]: '0' } },
  { what: 'dataset size 99999999999999999999', kind: 'rejected', reason: /dataset size .* is not an integer/, trailers: { [TRAILER.datasetSize]: '99999999999999999999' } },
  { what: 'commit without weights.safetensors', kind: 'rejected', reason: /has no file weights\.safetensors/, raw: 'missing-file' },
  { what: 'weights blob missing from the repository', kind: 'rejected', reason: /not found/, raw: 'missing-blob' },
  { what: 'weights blob corrupt on disk', kind: 'rejected', reason: /not a valid zlib stream|does not hash|truncated/, raw: 'corrupt-blob' },
  { what: 'loose object header claiming 1 TiB', kind: 'rejected', reason: /announces 1099511627776 bytes, more than the \d+ allowed/, raw: 'lying-object-size' },
  { what: 'no trailers at all', kind: 'ignored', message: 'just a commit\n' },
  { what: 'garbage Fedgit-Base', kind: 'ignored', trailers: { [TRAILER.base]: 'not-a-hash; rm -rf /' } },
  { what: 'garbage Fedgit-Round', kind: 'ignored', trailers: { [TRAILER.round]: 'one' } },
  { what: 'missing Fedgit-Dataset-Size', kind: 'ignored', trailers: { [TRAILER.datasetSize]: null } },
  { what: 'impersonating another edge (Fedgit-Edge: hospital-a in hospital-b\'s repository)', kind: 'ignored', trailers: { [TRAILER.edge]: 'hospital-a' } },
  { what: 'another plan\'s id', kind: 'ignored', trailers: { [TRAILER.plan]: 'f'.repeat(40) } },
  { what: 'a round number from the future', kind: 'ignored', trailers: { [TRAILER.round]: '99999999999999999999' } },
  { what: 'edge branch pointing at a blob', kind: 'broken-branch', breakBranch: 'blob' },
  { what: 'edge commit whose parent is missing', kind: 'broken-branch', breakBranch: 'missing-parent' },
  { what: 'edge branch ref holding garbage', kind: 'broken-branch', breakBranch: 'garbage-ref' },
  { what: 'edge commit object corrupt on disk', kind: 'broken-branch', breakBranch: 'corrupt-commit' },
];

test(`${CASES.length} bad edge updates: rejected and recorded or never merged; the aggregator stays up and the round merges the good edges`, { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-bad-update-');
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds: CASES.length + 1, edges: EDGES, minEdges: 2, deadline: '10m' }));
  const registries = builtinRegistries;
  // The clock is set from the head's commit time, never from how long the test has run: on a
  // loaded machine, cases take longer, and a clock counted from the test's start fell short of
  // a deadline counted from a commit made later ("round 26 did not merge").
  let clock = 0;
  const aggregator = inProcessAggregator(repos, { now: () => clock }, registries);
  /** Reconciles until the aggregator asks for nothing more (it looks again after each change). */
  const settle = async () => {
    for (let i = 0; i < 10; i++) if (!(await aggregator.reconcile())?.lookAgain) return;
    throw new Error('the aggregator kept asking to look again');
  };
  const global = new Repository(where.global);
  const repo = (edge: string) => new Repository(where.edges[edge]!);
  const branch = planBranch(plan.plan.name, plan.id);
  const author = { name: 'fedgit hospital-b', email: 'hospital-b@fedgit.invalid', timestamp: Math.floor(Date.now() / 1000) };
  const tally = new Tally();
  await settle();

  const pushGood = async (edge: string, base: string, round: number) =>
    commitEdgeUpdate(repo(edge), { plan, edge, round, base, architecture: 'linear-toy/v1', tensors: ok(), datasetSize: 100, metrics: { global: { loss: 1 }, local: { loss: 0.5 } } });
  const trailersFor = (base: string, round: number, overrides: Record<string, string | null> = {}) => {
    const t: Record<string, string | null> = {
      [TRAILER.plan]: plan.id, [TRAILER.round]: String(round), [TRAILER.architecture]: 'linear-toy/v1', [TRAILER.edge]: 'hospital-b',
      [TRAILER.base]: base, [TRAILER.datasetSize]: '100', [TRAILER.metricsGlobal]: renderMetricSummary({ loss: 1 }), [TRAILER.metricsLocal]: renderMetricSummary({ loss: 0.5 }),
      ...overrides,
    };
    return Object.entries(t).filter((e): e is [string, string] => e[1] !== null);
  };
  const metricsBlob = Buffer.from('{"global":{},"local":{}}\n');
  /** Writes a commit on hospital-b's branch from a tree and a message, moving the ref by compare-and-swap. */
  const pushB = async (treeEntries: Array<{ name: string; oid: string }>, message: string) => {
    const b = repo('hospital-b');
    const parent = await b.readRef(branch);
    const tree = await writeObject(b.gitdir, 'tree', renderTree(treeEntries));
    const { renderCommit } = await import('../operator/git/commit-object.js');
    const oid = await writeObject(b.gitdir, 'commit', renderCommit({ tree, parents: parent ? [parent] : [], author, committer: author, message }));
    await b.updateRef(branch, oid, parent);
    return oid;
  };
  const looseFile = (gitdir: string, oid: string) => path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
  const corruptBFsckExpected: string[] = [];

  for (const [i, c] of CASES.entries()) await t.test(c.what, async () => {
    const head = (await readGlobalHead(global, plan))!;
    const round = head.round + 1;
    await pushGood('hospital-a', head.oid, round);
    await pushGood('hospital-c', head.oid, round);
    const b = repo('hospital-b');
    const bHeadBefore = await b.readRef(branch);
    let badOid = '';
    const metricsOid = await writeObject(b.gitdir, 'blob', metricsBlob);
    if (c.kind === 'rejected') {
      let weightsOid: string | null = null;
      if (c.raw === 'missing-file') weightsOid = null;
      else if (c.raw === 'missing-blob') weightsOid = 'e'.repeat(39) + String(i % 10);
      else if (c.raw === 'lying-object-size') {
        weightsOid = 'd'.repeat(38) + String(i).padStart(2, '0');
        await mkdir(path.dirname(looseFile(b.gitdir, weightsOid)), { recursive: true });
        await writeFile(looseFile(b.gitdir, weightsOid), zlib.deflateSync(Buffer.from(`blob ${2 ** 40}\0abc`)));
        corruptBFsckExpected.push(c.what);
      } else {
        weightsOid = await writeObject(b.gitdir, 'blob', c.weights ? c.weights() : good());
        if (c.raw === 'corrupt-blob') {
          const file = looseFile(b.gitdir, weightsOid);
          await chmod(file, 0o644);
          await writeFile(file, Buffer.from('this is not a zlib stream'));
          corruptBFsckExpected.push(c.what);
        }
      }
      const entries = [{ name: METRICS_FILE, oid: metricsOid }, ...(weightsOid ? [{ name: WEIGHTS_FILE, oid: weightsOid }] : [])];
      badOid = await pushB(entries, renderMessage(`hospital-b: round ${round}, bad: ${c.what}`, trailersFor(head.oid, round, c.trailers)));
    } else if (c.kind === 'ignored') {
      const weightsOid = await writeObject(b.gitdir, 'blob', good());
      const entries = [{ name: METRICS_FILE, oid: metricsOid }, { name: WEIGHTS_FILE, oid: weightsOid }];
      badOid = await pushB(entries, c.message ?? renderMessage(`hospital-b: round ${round}, bad: ${c.what}`, trailersFor(head.oid, round, c.trailers)));
    } else {
      const ref = path.join(b.gitdir, ...branch.split('/'));
      if (c.breakBranch === 'blob') {
        badOid = await writeObject(b.gitdir, 'blob', Buffer.from('not a commit\n'));
        await b.updateRef(branch, badOid, bHeadBefore);
      } else if (c.breakBranch === 'missing-parent') {
        const { renderCommit } = await import('../operator/git/commit-object.js');
        const tree = await writeObject(b.gitdir, 'tree', renderTree([{ name: WEIGHTS_FILE, oid: await writeObject(b.gitdir, 'blob', good()) }, { name: METRICS_FILE, oid: metricsOid }]));
        badOid = await writeObject(b.gitdir, 'commit', renderCommit({ tree, parents: ['c'.repeat(40)], author, committer: author, message: renderMessage('hospital-b: orphan', trailersFor(head.oid, round)) }));
        await b.updateRef(branch, badOid, bHeadBefore);
        corruptBFsckExpected.push(c.what);
      } else if (c.breakBranch === 'garbage-ref') {
        await writeFile(ref, 'garbage\n');
      } else {
        badOid = await pushB([{ name: WEIGHTS_FILE, oid: await writeObject(b.gitdir, 'blob', good()) }, { name: METRICS_FILE, oid: metricsOid }], renderMessage(`hospital-b: round ${round}`, trailersFor(head.oid, round)));
        const file = looseFile(b.gitdir, badOid);
        await chmod(file, 0o644);
        await writeFile(file, Buffer.from('corrupt'));
        corruptBFsckExpected.push(c.what);
      }
    }
    tally.add('bad updates tried');

    // The aggregator looks: a bad update counts as not pushed, so the round waits for the deadline.
    const edgesBefore = await gitState(repos).then((st) => Object.fromEntries(Object.entries(st).filter(([k]) => k.startsWith('edge-'))));
    try {
      clock = head.timeMs;
      await settle();
      assert.equal((await readGlobalHead(global, plan))!.round, head.round, 'no merge before the deadline: hospital-b has no valid update');
      const recorded = await readRecordedRejections(global, plan, head.oid);
      if (c.kind === 'rejected') {
        const entry = recorded.find((r) => r.edge === 'hospital-b' && r.commit === badOid);
        assert.ok(entry, `the refusal is recorded before any merge (record: ${JSON.stringify(recorded)})`);
        assert.match(entry.reason, c.reason);
      } else {
        assert.ok(!recorded.some((r) => r.commit === badOid), 'not a fedgit update of this edge: nothing to refuse');
      }
      clock = head.timeMs + 11 * 60_000;
      await settle();
      const after = (await readGlobalHead(global, plan))!;
      assert.equal(after.round, round, `round ${round} merged at the deadline`);
      const entry = globalLog(where.global, branch)[0]!;
      assert.deepEqual(entry.merged.map((m) => m.split(' ')[0]), ['hospital-a', 'hospital-c']);
      if (badOid) assert.ok(!entry.merged.some((m) => m.includes(badOid)), 'the bad update was not merged');
      if (c.kind === 'rejected') {
        const rejected = entry.rejected.find((r) => r.startsWith(`hospital-b ${badOid} `));
        assert.ok(rejected, `Fedgit-Rejected names hospital-b ${badOid} (rejected: ${JSON.stringify(entry.rejected)})`);
        assert.match(rejected, c.reason);
        tally.add('rejected and recorded');
      } else {
        assert.ok(!badOid || !entry.rejected.some((r) => r.includes(badOid)), 'not recorded as rejected: it is not a fedgit update');
        tally.add(c.kind === 'ignored' ? 'not a fedgit update: never merged' : 'broken edge branch: edge counted as not pushed');
      }
      const report = await auditCommit(whereUnder(repos), registries, after.oid);
      assert.ok(report.ok, `audit: ${JSON.stringify(report.checks.filter((x) => !x.ok))}`);
      const edgesAfter = await gitState(repos).then((st) => Object.fromEntries(Object.entries(st).filter(([k]) => k.startsWith('edge-'))));
      assert.deepEqual(gitStateChanges(edgesBefore, edgesAfter), [], 'the aggregator wrote nothing to the edge repositories');
    } finally {
      // Repair hospital-b's branch for the next case (a broken branch is the edge's own problem to fix),
      // and if this case failed, merge its round from the good edges so the next case starts clean.
      if (c.kind === 'broken-branch' || (await readGlobalHead(global, plan))!.round !== round) {
        await writeFile(path.join(b.gitdir, ...branch.split('/')), `${bHeadBefore}\n`);
        clock = head.timeMs + 11 * 60_000;
        await settle().catch(() => undefined);
      }
    }
  });

  // Nothing lost: the global history is linear, each round once; the healthy repositories are sound.
  const history = globalLog(where.global, branch);
  const rounds = history.map((h) => Number(h.round));
  assert.deepEqual(rounds, [...rounds].sort((x, y) => y - x), 'rounds in order');
  assert.equal(new Set(rounds).size, rounds.length, 'each round once');
  for (const gitdir of [where.plan, where.global, where.edges['hospital-a']!, where.edges['hospital-c']!]) fsckStrict(gitdir);
  assert.deepEqual(await lockFiles(repos), []);
  console.log(`bad-input-updates: ${tally.get('bad updates tried')} bad edge updates tried; ${tally.get('rejected and recorded')} rejected with the reason in Fedgit-Rejected, ${tally.get('not a fedgit update: never merged')} not fedgit updates (never merged, round merged at the deadline), ${tally.get('broken edge branch: edge counted as not pushed')} broken edge branches survived; ${history.length - 1} rounds merged, each audited; hospital-b's repository was deliberately corrupted (${corruptBFsckExpected.length} cases); lost: nothing`);
});
