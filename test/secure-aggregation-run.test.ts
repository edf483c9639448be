/**
 * Secure aggregation in a federation: what each edge repository holds is statistically
 * independent of that edge's update, the merge is FedAvg of the true updates within the
 * fixed-point resolution and audits bit for bit, signed updates verify, a tampered masked update
 * fails the audit, and (with processes) an edge SIGKILLed after the others masked against it
 * does not stop the round: the survivors reveal the seeds they share with it, nothing is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { tempDir, startCli, exited, git, runCli, waitFor } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { inProcessAggregator, whereUnder } from './helpers/chaos.js';
import { assertSecureMerge, fixedAgreementKey, maskedCorrelation } from './helpers/secure-federation.js';
import { builtinRegistries } from '../bin/registries.js';
import { commitEdgeUpdate, readEdgeHistory, readFinalTag, readGlobalHead, readWeights } from '../operator/store/federation.js';
import { Repository } from '../operator/git/repository.js';
import { parseWordSafetensors } from '../operator/checkpoint/safetensors.js';
import { maskForPush } from '../operator/secagg/edge-secure.js';
import { auditCommit, renderAudit } from '../operator/commands/audit.js';
import { generateKeyPair, parsePrivateKey } from '../operator/trust/keys.js';
import { sign } from '../operator/trust/sign.js';
import { revealBranch } from '../operator/git/names.js';
import type { Update } from '../operator/contracts.js';

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
const FRACTIONAL_BITS = 20;

const planYaml = (edges: string, o: { rounds: number; features: number; deadline: string; epochDelayMs: number; extra?: string }) => `name: secure
rounds: ${o.rounds}
edges:
${edges}
roundDeadline: ${o.deadline}
minEdges: 2
seed: 42
secureAggregation: { fractionalBits: ${FRACTIONAL_BITS} }
app:
  id: linear-toy
  options: { features: ${o.features}, samplesPerEdge: 40, epochDelayMs: ${o.epochDelayMs} }
${o.extra ?? ''}`;

test('every pushed update is independent of the true one (|r| within 5 standard errors of 0), the merge is FedAvg within 2^-21 and audits; tampering fails', { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t);
  const signing = Object.fromEntries(EDGES.map((e) => [e, generateKeyPair()]));
  const agreement = Object.fromEntries(EDGES.map((e) => [e, fixedAgreementKey(e)]));
  const edges = EDGES.map((e) => `  - { name: ${e}, publicKey: '${signing[e]!.publicKey}', agreementKey: '${agreement[e]!.publicKey}' }`).join('\n');
  const { plan, repos, where } = await setUpFederation(dir, planYaml(edges, { rounds: 2, features: 100_000, deadline: '10m', epochDelayMs: 0 }));
  const aggregator = inProcessAggregator(repos, {}, builtinRegistries);
  const settle = async () => { for (let i = 0; i < 20 && (await aggregator.reconcile())?.lookAgain; i++); };
  await settle();
  const global = await aggregator.global();
  const quiet = { error() {}, warn() {}, info() {}, debug() {} };
  const apps = new Map(await Promise.all(EDGES.map(async (e) => [e, await builtinRegistries.apps.createEdgeApp(plan.plan.app.id, plan.plan.app.options, { edge: e, engine: { kind: 'builtin' }, log: quiet })] as const)));
  t.after(() => Promise.all([...apps.values()].map((a) => a.close())).then(() => undefined));
  for (let round = 1; round <= 2; round++) {
    const head = (await readGlobalHead(global, plan))!;
    const previous = await readWeights(global, head.oid);
    const truths: Update[] = [];
    for (const edge of EDGES) {
      const result = await apps.get(edge)!.train({ weights: previous, epochs: 1, round, planId: plan.id, seed: 42, signal: new AbortController().signal });
      const masked = maskForPush(plan, agreement[edge]!.privateKey, { edge, round, tensors: result.weights, previous, datasetSize: result.datasetSize });
      const repo = new Repository(where.edges[edge]!);
      const key = parsePrivateKey(signing[edge]!.privateKeyPem);
      const oid = await commitEdgeUpdate(repo, { plan, edge, round, base: head.oid, architecture: apps.get(edge)!.architecture, tensors: result.weights, masked, datasetSize: result.datasetSize, metrics: result.metrics, sign: (s) => sign(s, key) });
      // What anyone reading this edge's repository sees:
      const pushed = parseWordSafetensors(await repo.readFile(oid, 'weights.safetensors')).tensors;
      const r = maskedCorrelation(pushed, result.weights, previous);
      // Independent values give r with a standard error of 1/√n (~0.003 here): |r| < 0.01 was
      // 3.2 of them: a 1 % chance per run (six checks) of failing. Five is about one in a million; a mask that
      // leaks the update gives |r| near 1.
      const values = [...previous.values()].reduce((n, t) => n + t.data.length, 0);
      assert.ok(Math.abs(r) < 5 / Math.sqrt(values), `round ${round}, ${edge}: correlation ${r} of the pushed update with the true one (${values} values)`);
      truths.push({ edge, datasetSize: result.datasetSize, tensors: result.weights });
    }
    await settle();
    const rendered = await assertSecureMerge({ global, plan, repos, round, truths, previous, fractionalBits: FRACTIONAL_BITS });
    assert.match(rendered, /hospital-a@[0-9a-f]{8} signed by hospital-a's key/);
    assert.match(rendered, /ok {3}recomputed secure fedavg \(sum of 3 masked updates mod 2\^64, fixed point 2\^-20\) matches the stored weights bit for bit/);
  }

  // A masked update changed by one bit (re-signed by its own edge) no longer gives the stored merge.
  const head = (await readGlobalHead(global, plan))!;
  const aRepo = new Repository(where.edges['hospital-a']!);
  const honest = head.merged.find((m) => m.edge === 'hospital-a')!.commit;
  const original = await aRepo.readCommit(honest);
  const checkpoint = parseWordSafetensors(await aRepo.readFile(honest, 'weights.safetensors'));
  const words = Uint32Array.from(checkpoint.tensors.get('linear.weight')!.words);
  words[0] = words[0]! ^ 1;
  const tampered = new Map(checkpoint.tensors).set('linear.weight', { shape: checkpoint.tensors.get('linear.weight')!.shape, words });
  const { renderWordSafetensors } = await import('../operator/checkpoint/safetensors.js');
  const { edgeStatementOf } = await import('../operator/store/federation.js');
  const { parseEdgeRecord } = await import('../operator/store/records.js');
  const bytes = renderWordSafetensors(tampered, { ...checkpoint.metadata });
  const key = parsePrivateKey(signing['hospital-a']!.privateKeyPem);
  const record = parseEdgeRecord(original)!;
  const message = original.message.replace(/Fedgit-Signature: .*\n/, `Fedgit-Signature: ${sign(edgeStatementOf(record, bytes), key)}\n`);
  const forgedEdge = await aRepo.writeCommit({ files: { 'weights.safetensors': bytes, 'metrics.json': await aRepo.readFile(honest, 'metrics.json') }, parents: original.parents, message, author: original.author });
  const merge = await global.readCommit(head.oid);
  const forgedMerge = await global.writeCommit({ files: { 'weights.safetensors': await global.readFile(head.oid, 'weights.safetensors'), 'metrics.json': Buffer.from((await global.readFile(head.oid, 'metrics.json')).toString().replace(honest, forgedEdge)) }, parents: merge.parents, message: merge.message.replace(honest, forgedEdge), author: merge.author });
  const audit = await auditCommit(whereUnder(repos), builtinRegistries, forgedMerge);
  assert.equal(audit.ok, false);
  assert.match(renderAudit(audit), /FAIL recomputed secure fedavg/);
  assert.match(renderAudit(audit), /ok {3}hospital-a@[0-9a-f]{8} signed by hospital-a's key/);
});

test('an edge SIGKILLed after the others masked against it: the survivors reveal only their seeds with it, the round merges and audits, nothing is lost', { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t);
  const publicKeys: Record<string, { publicKey: string; agreementKey?: string }> = {};
  for (const name of [...EDGES, 'aggregator']) {
    const args = ['keygen', '--out', path.join(dir, 'keys', `${name}.pem`), ...(name === 'aggregator' ? [] : ['--agreement-out', path.join(dir, 'keys', `${name}-x25519.pem`)]), '--name', name];
    const out = await runCli(args, { cwd: dir });
    assert.equal(out.code, 0, out.stderr);
    publicKeys[name] = { publicKey: /publicKey: (ed25519:\S+)/.exec(out.stdout)![1]!, ...(name === 'aggregator' ? {} : { agreementKey: /agreementKey: (x25519:\S+)/.exec(out.stdout)![1]! }) };
  }
  const edges = EDGES.map((e) => `  - { name: ${e}, publicKey: '${publicKeys[e]!.publicKey}', agreementKey: '${publicKeys[e]!.agreementKey}' }`).join('\n');
  const yaml = planYaml(edges, { rounds: 2, features: 2_000, deadline: '20s', epochDelayMs: 2_000, extra: `aggregator: { publicKey: '${publicKeys.aggregator!.publicKey}' }\n` });
  const { plan, where } = await setUpFederation(dir, yaml);
  for (const e of EDGES) await writeFile(path.join(dir, `${e}.yaml`), `role: edge\nname: ${e}\nrepos: { root: repos }\nlogs: logs\nkey: keys/${e}.pem\nagreementKey: keys/${e}-x25519.pem\n`);
  await writeFile(path.join(dir, 'aggregator.yaml'), 'role: aggregator\nrepos: { root: repos }\nlogs: logs\nkey: keys/aggregator.pem\n');
  const children: Array<ReturnType<typeof startCli>> = [];
  const start = (name: string) => {
    const child = startCli([name === 'aggregator' ? 'aggregator' : 'edge', '--config', `${name}.yaml`, '--exit-when-done'], { cwd: dir });
    children.push(child);
    return child;
  };
  t.after(() => children.forEach((c) => c.kill('SIGKILL')));
  const aggregator = start('aggregator');
  start('hospital-a');
  start('hospital-b');
  const edgeRepo = (e: string) => new Repository(where.edges[e]!);
  const pushedRound = async (e: string, round: number) => (await readEdgeHistory(edgeRepo(e), plan)).some((r) => r.round === round);
  await waitFor('hospital-a and hospital-b to push round 1', async () => (await pushedRound('hospital-a', 1)) && (await pushedRound('hospital-b', 1)), 120_000);
  // hospital-c starts training round 1 and dies before it can push (its epoch alone takes 2 s).
  const c = start('hospital-c');
  await waitFor('hospital-c to start training', async () => /round 1\/2: training/.test(c.output()), 60_000);
  c.kill('SIGKILL');
  await exited(c);
  assert.equal(await pushedRound('hospital-c', 1), false, 'hospital-c pushed nothing for round 1');

  const global = new Repository(where.global);
  const round1 = await waitFor('round 1 to merge through recovery', async () => {
    const head = await readGlobalHead(global, plan);
    return head && head.round >= 1 ? head : null;
  }, 120_000);
  assert.deepEqual(round1.merged.map((m) => m.edge), ['hospital-a', 'hospital-b']);
  assert.ok(round1.recovery, 'the merge names the recovery request and the reveals it used');
  // Each survivor revealed exactly one seed: the one it shares with hospital-c.
  for (const e of ['hospital-a', 'hospital-b']) {
    const seeds = git(where.edges[e]!, 'log', '--format=%(trailers:key=Fedgit-Revealed-Seed,valueonly)', revealBranch(plan.plan.name, plan.id)).trim().split('\n').filter(Boolean);
    assert.equal(seeds.length, 1, `${e} revealed ${seeds.join('; ')}`);
    assert.match(seeds[0]!, /^hospital-c [0-9a-f]{64}$/);
  }

  // hospital-c comes back: it sits out the recovered round and takes part in the next one.
  start('hospital-c');
  assert.equal(await exited(aggregator), 0, aggregator.output());
  const final = (await readGlobalHead(global, plan))!;
  assert.equal(final.round, 2);
  assert.equal(await readFinalTag(global, plan), final.oid);
  assert.deepEqual(final.merged.map((m) => m.edge), EDGES, 'round 2 merges all three edges');
  assert.ok(!(await readEdgeHistory(edgeRepo('hospital-c'), plan)).some((r) => r.round === 1), 'hospital-c never pushed a round-1 update after the recovery');
  for (const oid of [round1.oid, final.oid]) {
    const audit = await runCli(['audit', oid], { cwd: dir });
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    assert.match(audit.stdout, /merge signed by the plan's aggregator key/);
  }
  const audit1 = await runCli(['audit', round1.oid], { cwd: dir });
  assert.match(audit1.stdout, /ok {3}recovery request [0-9a-f]{8} is the aggregator's/);
  assert.match(audit1.stdout, /ok {3}hospital-a's reveal [0-9a-f]{8} answers the request with exactly the seeds shared with hospital-c, signed by its key/);
  assert.match(audit1.stdout, /ok {3}recomputed secure fedavg \(sum of 2 masked updates mod 2\^64, with the masks shared with hospital-c removed by 2 revealed seed record\(s\)/);

  // A tampered revealed seed (re-signed by its survivor) gives another merge: the audit fails.
  const aRepo = edgeRepo('hospital-a');
  const reveal = round1.recovery!.reveals.find((r) => r.edge === 'hospital-a')!.commit;
  const original = await aRepo.readCommit(reveal);
  const { parseRevealRecord } = await import('../operator/store/secure-records.js');
  const { renderRevealStatement } = await import('../operator/secagg/statements.js');
  const record = parseRevealRecord(original, plan.id)!;
  const flipped = record.seeds.map((s) => ({ ...s, seedHex: (s.seedHex[0] === '0' ? '1' : '0') + s.seedHex.slice(1) }));
  const key = parsePrivateKey(await (await import('node:fs/promises')).readFile(path.join(dir, 'keys', 'hospital-a.pem'), 'utf8'));
  const signature = sign(renderRevealStatement({ planId: plan.id, round: record.round, edge: record.edge, request: record.request, seeds: flipped }), key);
  const message = original.message.replace(record.seeds[0]!.seedHex, flipped[0]!.seedHex).replace(/Fedgit-Signature: .*\n/, `Fedgit-Signature: ${signature}\n`);
  const forgedReveal = await aRepo.writeCommit({ files: {}, parents: original.parents, message, author: original.author });
  const merge = await global.readCommit(round1.oid);
  const forgedMerge = await global.writeCommit({ files: { 'weights.safetensors': await global.readFile(round1.oid, 'weights.safetensors'), 'metrics.json': await global.readFile(round1.oid, 'metrics.json') }, parents: merge.parents, message: merge.message.replace(reveal, forgedReveal), author: merge.author });
  const tampered = await runCli(['audit', forgedMerge], { cwd: dir });
  assert.equal(tampered.code, 1, tampered.stdout);
  assert.match(tampered.stdout, /ok {3}hospital-a's reveal [0-9a-f]{8} answers the request/);
  assert.match(tampered.stdout, /FAIL recomputed secure fedavg/);
});
