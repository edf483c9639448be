/** Only the right participants count: signed updates, signed merges, forged updates rejected. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { tempDir, runCli, git, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { createOpener } from '../operator/store/open-repository.js';
import { createLogger } from '../operator/runtime/logging.js';
import { builtinRegistries } from '../bin/registries.js';
import { commitEdgeUpdate, readGlobalHead, readWeights, reposUnder } from '../operator/store/federation.js';
import { Repository } from '../operator/git/repository.js';
import { generateKeyPair, parsePrivateKey } from '../operator/trust/keys.js';
import { sign } from '../operator/trust/sign.js';

async function keygen(dir: string, name: string): Promise<string> {
  const out = await runCli(['keygen', '--out', path.join(dir, 'keys', `${name}.pem`)], { cwd: dir });
  assert.equal(out.code, 0, out.stderr);
  const key = /ed25519:[A-Za-z0-9+/=]+/.exec(out.stdout)?.[0];
  assert.ok(key, out.stdout);
  return key;
}

test('a signed federation runs, its merges audit with every signature checked, and keys never reach git or logs', async (t) => {
  const dir = await tempDir(t);
  const keys = { a: await keygen(dir, 'hospital-a'), b: await keygen(dir, 'hospital-b'), agg: await keygen(dir, 'aggregator') };
  const plan = toyPlan().replace('edges: [hospital-a, hospital-b]', `edges:\n  - { name: hospital-a, publicKey: '${keys.a}' }\n  - { name: hospital-b, publicKey: '${keys.b}' }\naggregator: { publicKey: '${keys.agg}' }`);
  await writeFile(path.join(dir, 'plan.yaml'), plan);
  for (const edge of ['hospital-a', 'hospital-b']) {
    await writeFile(path.join(dir, `${edge}.yaml`), `role: edge\nname: ${edge}\nrepos: { root: repos }\nlogs: logs\nkey: keys/${edge}.pem\n`);
  }
  await writeFile(path.join(dir, 'aggregator.yaml'), 'role: aggregator\nrepos: { root: repos }\nlogs: logs\nkey: keys/aggregator.pem\n');
  const run = await runCli(['run', 'plan.yaml', '--edge-config', 'hospital-a=hospital-a.yaml', '--edge-config', 'hospital-b=hospital-b.yaml', '--aggregator-config', 'aggregator.yaml', '--timeout', '90'], { cwd: dir });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const global = path.join(dir, 'repos', 'global.git');
  const commits = git(global, 'log', '--format=%H', '--tags').trim().split('\n');
  assert.equal(commits.length, 4);
  for (const commit of commits) {
    const audit = await runCli(['audit', commit], { cwd: dir });
    assert.equal(audit.code, 0, audit.stdout);
    assert.match(audit.stdout, /merge signed by the plan's aggregator key/);
  }
  const lastAudit = await runCli(['audit', commits[0]!], { cwd: dir });
  assert.match(lastAudit.stdout, /hospital-a@[0-9a-f]{8} signed by hospital-a's key/);
  assert.match(git(path.join(dir, 'repos', 'edge-hospital-a.git'), 'log', '-1', '--format=%(trailers:key=Fedgit-Signature,valueonly)', '--all'), /^ed25519:/);
  const secret = (await readFile(path.join(dir, 'keys', 'hospital-a.pem'), 'utf8')).split('\n')[1]!;
  for (const file of ['logs/hospital-a.jsonl', 'logs/aggregator.jsonl']) assert.ok(!(await readFile(path.join(dir, file), 'utf8')).includes(secret));
  assert.ok(!git(path.join(dir, 'repos', 'edge-hospital-a.git'), 'log', '-p', '--all').includes(secret));
});

test('someone who can write to an edge repository but holds no key cannot get a model merged', async (t) => {
  const dir = await tempDir(t);
  const a = generateKeyPair();
  const b = generateKeyPair();
  const intruder = generateKeyPair();
  const yaml = toyPlan({ minEdges: 1 }).replace('edges: [hospital-a, hospital-b]', `edges:\n  - { name: hospital-a, publicKey: '${a.publicKey}' }\n  - { name: hospital-b, publicKey: '${b.publicKey}' }`);
  const { plan, repos } = await setUpFederation(dir, yaml);
  const registries = builtinRegistries;
  // A refused update counts as not pushed: the round merges the other edge once the deadline passes.
  let clock = Date.now();
  const aggregator = new AggregatorOperator({ locate: (e) => reposUnder(repos, e), open: createOpener(), ...registries, log: createLogger({ participant: 'aggregator', console: false }), now: () => clock });
  const settle = async () => {
    for (let i = 0; i < 10 && (await aggregator.reconcile())?.lookAgain; i++);
  };
  const afterDeadline = async () => {
    clock = (await readGlobalHead(global, plan))!.timeMs + 11 * 60_000;
    await settle();
  };
  await aggregator.reconcile();
  const global = await aggregator.global();
  const round0 = (await readGlobalHead(global, plan))!;
  const tensors = await readWeights(global, round0.oid);
  const where = reposUnder(repos, ['hospital-a', 'hospital-b']);
  const push = (edge: string, signWith: string | undefined) =>
    commitEdgeUpdate(new Repository(where.edges[edge]!), {
      plan, edge, round: 1, base: round0.oid, architecture: 'linear-toy/v1', tensors, datasetSize: 10, metrics: { global: {}, local: {} },
      ...(signWith ? { sign: (s: string) => sign(s, parsePrivateKey(signWith)) } : {}),
    });
  await push('hospital-a', a.privateKeyPem);
  const forged = await push('hospital-b', intruder.privateKeyPem);
  await afterDeadline();
  const round1 = (await readGlobalHead(global, plan))!;
  assert.equal(round1.round, 1);
  assert.deepEqual(round1.merged.map((m) => m.edge), ['hospital-a']);
  assert.equal(round1.rejected.length, 1);
  assert.match(round1.rejected[0]!, new RegExp(`^hospital-b ${forged} signature: .*does not match`));

  // An unsigned update is refused the same way.
  const unsigned = await commitEdgeUpdate(new Repository(where.edges['hospital-b']!), { plan, edge: 'hospital-b', round: 2, base: round1.oid, architecture: 'linear-toy/v1', tensors, datasetSize: 10, metrics: { global: {}, local: {} } });
  await commitEdgeUpdate(new Repository(where.edges['hospital-a']!), { plan, edge: 'hospital-a', round: 2, base: round1.oid, architecture: 'linear-toy/v1', tensors, datasetSize: 10, metrics: { global: {}, local: {} }, sign: (s: string) => sign(s, parsePrivateKey(a.privateKeyPem)) });
  await afterDeadline();
  const round2 = (await readGlobalHead(global, plan))!;
  assert.deepEqual(round2.merged.map((m) => m.edge), ['hospital-a']);
  assert.match(round2.rejected[0]!, new RegExp(`^hospital-b ${unsigned} unsigned, but the plan requires signed updates`));
});
