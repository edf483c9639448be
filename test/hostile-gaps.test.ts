/**
 * The smaller gaps a hostile or careless participant could use, one test each: secrets in the
 * wrong place, a key shared by two participants, duplicated trailers and header keys, one edge
 * claiming a huge dataset, temporary objects left by a kill, and a merge whose metrics.json lies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chmod, mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { tempDir, runCli, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { inProcessAggregator, whereUnder } from './helpers/chaos.js';
import { builtinRegistries } from '../bin/registries.js';
import { generateKeyPair } from '../operator/trust/keys.js';
import { Repository } from '../operator/git/repository.js';
import { renderMessage, TRAILER, METRICS_FILE, WEIGHTS_FILE } from '../operator/git/names.js';
import { parseEdgeRecord } from '../operator/store/records.js';
import { parseSafetensors, renderSafetensors } from '../operator/checkpoint/safetensors.js';
import { commitEdgeUpdate, readGlobalHead, readWeights } from '../operator/store/federation.js';
import { auditCommit } from '../operator/commands/audit.js';
import { capShares } from '../operator/reconcile/influence.js';
import { createOpener } from '../operator/store/open-repository.js';
import { CheckpointCorrupt } from '../operator/errors.js';

const SECRET = 'tok-3f9a1c77e2b54d0c';

test('a token file that group or others can read is refused (exit 3), naming the field, never the token', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'token'), SECRET, { mode: 0o644 });
  await chmod(path.join(dir, 'token'), 0o644);
  await writeFile(path.join(dir, 'edge.yaml'), `role: edge\nname: hospital-a\nrepos: { root: 'http://127.0.0.1:9/fedgit' }\nauth: { tokenFile: token }\n`);
  const result = await runCli(['edge', '--config', 'edge.yaml'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /edge\.yaml: auth\.tokenFile: .*token has mode 0644: a token must not be accessible to group or others/);
  assert.ok(!result.stderr.includes(SECRET) && !result.stdout.includes(SECRET));
});

test('a token inside a repository URL is refused (exit 3) without echoing it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'edge.yaml'), `role: edge\nname: hospital-a\nrepos: { root: 'https://hospital-a:${SECRET}@git.example.org/fedgit' }\n`);
  const result = await runCli(['edge', '--config', 'edge.yaml'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /edge\.yaml: repos\.root: the URL carries a user name or token/);
  assert.ok(!result.stderr.includes(SECRET));
});

test('a private key file others can read exits 3, like every bad config', async (t) => {
  const dir = await tempDir(t);
  const { repos } = await setUpFederation(dir, toyPlan());
  await writeFile(path.join(dir, 'key.pem'), generateKeyPair().privateKeyPem);
  await chmod(path.join(dir, 'key.pem'), 0o644);
  await writeFile(path.join(dir, 'edge.yaml'), `role: edge\nname: hospital-a\nrepos: { root: ${repos} }\nkey: key.pem\n`);
  const result = await runCli(['edge', '--config', 'edge.yaml'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /key\.pem has mode 0644/);
});

test('one public key for two participants is a plan error', async (t) => {
  const dir = await tempDir(t);
  const shared = generateKeyPair().publicKey;
  const yaml = toyPlan().replace('edges: [hospital-a, hospital-b]', `edges:\n  - { name: hospital-a, publicKey: '${shared}' }\n  - { name: hospital-b, publicKey: '${shared}' }`);
  await writeFile(path.join(dir, 'plan.yaml'), yaml);
  const result = await runCli(['run', 'plan.yaml'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /plan\.yaml:\d+: edges\[1\]\.publicKey: is the same key as edge 'hospital-a''s/);
});

test('an edge commit with a single-valued trailer twice is not a valid update', () => {
  const trailers: Array<[string, string]> = [
    [TRAILER.plan, 'a'.repeat(40)], [TRAILER.round, '1'], [TRAILER.edge, 'hospital-b'], [TRAILER.base, 'b'.repeat(40)],
    [TRAILER.datasetSize, '10'], [TRAILER.datasetSize, '1000000000'],
  ];
  const record = parseEdgeRecord({
    oid: 'c'.repeat(40), tree: 'd'.repeat(40), parents: [], message: renderMessage('x', trailers), trailers,
    author: { name: 'x', email: 'x@y', timestamp: 1 }, committer: { name: 'x', email: 'x@y', timestamp: 1 },
  });
  assert.equal(record?.problem, 'the commit has more than one Fedgit-Dataset-Size trailer');
});

test('a safetensors header with a key twice is refused', () => {
  const good = renderSafetensors(new Map([['w', { shape: [1], data: Float32Array.of(1) }]]));
  const header = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  assert.throws(() => parseSafetensors(Buffer.concat([len, Buffer.from(header), good.subarray(good.length - 4)])), (e) => e instanceof CheckpointCorrupt && /the key "w" twice/.test(e.message));
  // Keys repeated in different objects are fine.
  assert.doesNotThrow(() => parseSafetensors(renderSafetensors(new Map([['a', { shape: [1], data: Float32Array.of(1) }], ['b', { shape: [1], data: Float32Array.of(2) }]]))));
});

test('maximum share: water-filling caps every weight and keeps the sum at 1', () => {
  const capped = capShares([0.9999998, 0.0000001, 0.0000001], 0.5);
  assert.equal(capped[0], 0.5);
  assert.ok(Math.abs(capped[1]! - 0.25) < 1e-12 && Math.abs(capped[2]! - 0.25) < 1e-12);
  const uneven = capShares([0.7, 0.2, 0.1], 0.4);
  assert.deepEqual(uneven.map((w) => Number(w.toFixed(12))), [0.4, 0.4, 0.2]);
  assert.deepEqual(capShares([0.5, 0.5], 0.4), [0.5, 0.5], 'a cap below 1/n cannot be met: equal weights');
  assert.deepEqual(capShares([0.3, 0.7], 1), [0.3, 0.7]);
});

async function mergeWithClaim(t: { after: (fn: () => Promise<void>) => void }, yaml: string, claimB: number) {
  const dir = await tempDir(t);
  const { plan, repos, where } = await setUpFederation(dir, yaml);
  const registries = builtinRegistries;
  const aggregator = inProcessAggregator(repos, {}, registries);
  await aggregator.reconcile();
  const global = new Repository(where.global);
  const round0 = (await readGlobalHead(global, plan))!;
  const tensors = await readWeights(global, round0.oid);
  for (const [edge, size] of [['hospital-a', 100], ['hospital-b', claimB]] as const) {
    await commitEdgeUpdate(new Repository(where.edges[edge]!), { plan, edge, round: 1, base: round0.oid, architecture: 'linear-toy/v1', tensors, datasetSize: size, metrics: { global: {}, local: {} } });
  }
  for (let i = 0; i < 5 && (await aggregator.reconcile())?.lookAgain; i++);
  const round1 = (await readGlobalHead(global, plan))!;
  return { round1, audit: await auditCommit(whereUnder(repos), registries, round1.oid), plan, repos, where, global };
}

test('an edge claiming a billion samples weighs at most maxShare, and audit shows the bound', async (t) => {
  const { round1, audit } = await mergeWithClaim(t, `${toyPlan()}maxShare: 0.5\n`, 1_000_000_000);
  assert.deepEqual(round1.merged.map((m) => [m.edge, m.datasetSize, m.weight]), [['hospital-a', 100, 0.5], ['hospital-b', 1_000_000_000, 0.5]]);
  assert.ok(audit.ok, JSON.stringify(audit.checks));
  assert.ok(audit.checks.some((c) => /under the plan's bounds \(maxShare 0\.5\)/.test(c.what)));
});

test('a claim above the declared maxDatasetSize counts as the declared size', async (t) => {
  const yaml = toyPlan().replace('edges: [hospital-a, hospital-b]', 'edges:\n  - hospital-a\n  - { name: hospital-b, maxDatasetSize: 300 }');
  const { round1, audit } = await mergeWithClaim(t, yaml, 1_000_000_000);
  assert.deepEqual(round1.merged.map((m) => m.weight), [0.25, 0.75]);
  assert.ok(audit.ok, JSON.stringify(audit.checks));
  assert.ok(audit.checks.some((c) => /maxDatasetSize hospital-b ≤ 300/.test(c.what)));
});

test('fedgit audit checks metrics.json of a merge', async (t) => {
  const { round1, global, repos } = await mergeWithClaim(t, toyPlan(), 100);
  // The same merge with a metrics.json that names another commit: weights, trailers and parent unchanged.
  const commit = await global.readCommit(round1.oid);
  const metrics = JSON.parse((await global.readFile(round1.oid, METRICS_FILE)).toString('utf8')) as { updates: Record<string, { commit: string }> };
  metrics.updates['hospital-b']!.commit = 'f'.repeat(40);
  const forged = await global.writeCommit({
    files: { [WEIGHTS_FILE]: await global.readFile(round1.oid, WEIGHTS_FILE), [METRICS_FILE]: Buffer.from(JSON.stringify(metrics)) },
    parents: commit.parents, message: commit.message, author: commit.author,
  });
  const audit = await auditCommit(whereUnder(repos), builtinRegistries, forged);
  assert.equal(audit.ok, false);
  const failed = audit.checks.filter((c) => !c.ok).map((c) => c.what);
  assert.equal(failed.length, 1, failed.join('\n'));
  assert.match(failed[0]!, /metrics\.json .*the entry of hospital-b does not name commit/);
});

test('temporary object files left by a killed writer are swept when a repository is opened; young ones are kept', async (t) => {
  const gitdir = path.join(await tempDir(t), 'r.git');
  await Repository.ensureBare(gitdir);
  await mkdir(path.join(gitdir, 'objects', 'ab'), { recursive: true });
  const old = path.join(gitdir, 'objects', 'ab', 'tmp_obj_old123');
  const young = path.join(gitdir, 'objects', 'ab', 'tmp_obj_young4');
  await writeFile(old, '');
  await writeFile(young, '');
  const hourAgo = new Date(Date.now() - 3_600_000);
  await utimes(old, hourAgo, hourAgo);
  await createOpener().require(gitdir, 'the test repository');
  assert.deepEqual((await readdir(path.join(gitdir, 'objects', 'ab'))).sort(), ['tmp_obj_young4']);
});

