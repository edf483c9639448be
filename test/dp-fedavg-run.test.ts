/**
 * DP-FedAvg end to end on the toy app, driven in-process with the real aggregator operator: three
 * rounds with privacy, every merge audits (with the round's seed: bit for bit; without: the noise
 * statistics), ε trailers rise and match the accountant, forged noise fails the seedless audit, a
 * budget of two rounds stops and tags after two with a log line saying why, and the aggregator's
 * secret appears in no log and no git object.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { Tensors } from '../operator/contracts.js';
import { checkpointBytes, readFinalTag, readGlobalHistory, readWeights } from '../operator/store/federation.js';
import { Repository } from '../operator/git/repository.js';
import { METRICS_FILE, WEIGHTS_FILE } from '../operator/git/names.js';
import type { GlobalRecord } from '../operator/store/records.js';
import { builtinRegistries } from '../bin/registries.js';
import { renderAudit } from '../operator/commands/audit.js';
import { readRounds, renderRounds } from '../operator/commands/log.js';
import { epsilonAfter } from '../operator/privacy/rdp-accountant.js';
import { computeMerge } from '../operator/reconcile/merge.js';
import { failures, startDpFederation, type DpFederation } from './helpers/dp-federation.js';
import { runCli, tempDir, toyPlan } from './helpers/temp.js';
import { readParticipantConfig } from '../operator/config/participant.js';

const EDGES = ['hospital-a', 'hospital-b', 'hospital-c'];
const privacyYaml = (z: number, targetEpsilon: number) => `privacy: { targetEpsilon: ${targetEpsilon}, delta: 0.00001, noiseMultiplier: ${z}, clipNorm: 0.5 }\n`;

/** A copy of `merge` whose weights are `tensors` (same message, metrics and parent), for forged-noise audits. */
async function forgeWeights(fed: DpFederation, merge: GlobalRecord, tensors: Tensors): Promise<string> {
  const commit = await fed.global.readCommit(merge.oid);
  const files = { [WEIGHTS_FILE]: checkpointBytes(tensors, { planId: fed.plan.id, round: merge.round, architecture: merge.architecture }), [METRICS_FILE]: await fed.global.readFile(merge.oid, METRICS_FILE) };
  return fed.global.writeCommit({ files, parents: commit.parents, message: commit.message, author: commit.author });
}

/** The noise-free average of `merge` and its stored weights, for forging. */
async function noiseParts(fed: DpFederation, merge: GlobalRecord) {
  const stored = await readWeights(fed.global, merge.oid);
  const updates = [];
  for (const m of merge.merged) updates.push({ edge: m.edge, datasetSize: m.datasetSize, tensors: await readWeights(new Repository(path.join(fed.repos, `edge-${m.edge}.git`)), m.commit) });
  const strategy = builtinRegistries.strategies.get(fed.plan.plan.strategy, fed.plan.plan.strategyOptions);
  const merged = computeMerge(fed.plan.plan, strategy, updates, await readWeights(fed.global, merge.parent!), null, await fed.seedOf(merge.round));
  return { stored, noiseFree: merged.dp!.noiseFree };
}

test('DP-FedAvg, 3 rounds: every merge audits with the seed (bit for bit) and without (noise statistics); ε rises and matches the accountant', async (t) => {
  const fed = await startDpFederation(t, `${toyPlan({ rounds: 3, edges: EDGES, minEdges: 3 })}${privacyYaml(5, 8)}`);
  const merges: GlobalRecord[] = [];
  for (let r = 1; r <= 3; r++) {
    const merge = await fed.round();
    assert.equal(merge.round, r, fed.lines.join('\n'));
    merges.push(merge);
    const withSeed = await fed.audit(merge.oid, await fed.seedOf(r));
    assert.ok(withSeed.ok, `round ${r} with the seed: ${failures(withSeed)}`);
    assert.ok(withSeed.checks.some((c) => c.ok && /matches the stored weights bit for bit/.test(c.what)));
    const seedless = await fed.audit(merge.oid);
    assert.ok(seedless.ok, `round ${r} without the seed: ${failures(seedless)}`);
    assert.ok(seedless.checks.some((c) => c.ok && /look like N\(0, σ²\)/.test(c.what)));
    assert.ok(seedless.checks.some((c) => /not checked: the noise itself was not recomputed/.test(c.what)));
    if (process.env.FEDGIT_PRINT_AUDIT) console.log(renderAudit(seedless), '\n', renderAudit(withSeed));
    const wrongSeed = await fed.audit(merge.oid, await fed.seedOf(r + 1));
    assert.ok(!wrongSeed.ok && /noise seed given matches the commitment/.test(failures(wrongSeed)), 'another round\'s seed is refused');
    assert.ok(merge.merged.every((m) => m.weight === 1 / 3));
  }
  const epsilons = merges.map((m) => Number(m.privacy!.epsilon));
  assert.ok(epsilons[0]! < epsilons[1]! && epsilons[1]! < epsilons[2]!, `ε rises: ${epsilons}`);
  epsilons.forEach((e, i) => assert.ok(e >= epsilonAfter(i + 1, 1e-5, 5) && e <= epsilonAfter(i + 1, 1e-5, 5) * (1 + 1e-5)));
  assert.ok(merges.every((m) => m.privacy!.delta === '0.00001' && /^sha256:[0-9a-f]{64}$/.test(m.privacy!.noiseCommitment)));
  assert.equal(await readFinalTag(fed.global, fed.plan), merges[2]!.oid);
  const table = renderRounds(fed.plan, await readRounds(fed.global, fed.plan), merges[2]!.oid);
  assert.match(table, /ε spent \(δ 0\.00001\)/);
  for (const m of merges) assert.ok(table.includes(m.privacy!.epsilon), table);

  // Forged noise: the noise-free average itself, or ten times the noise, fails the seedless audit.
  const { stored, noiseFree } = await noiseParts(fed, merges[1]!);
  const scaled = (k: number): Tensors => new Map([...stored].map(([name, tensor]) => [name, { shape: tensor.shape, data: Float32Array.from(tensor.data, (v, i) => noiseFree.get(name)![i]! + k * (v - noiseFree.get(name)![i]!)) }]));
  for (const [k, what] of [[0, 'no noise'], [10, 'ten times the noise']] as const) {
    const report = await fed.audit(await forgeWeights(fed, merges[1]!, scaled(k)));
    assert.ok(!report.ok && /look like N\(0, σ²\)/.test(failures(report)), `${what}: ${failures(report)}`);
  }
  // A forged ε trailer fails too.
  const commit = await fed.global.readCommit(merges[2]!.oid);
  const files = { [WEIGHTS_FILE]: await fed.global.readFile(merges[2]!.oid, WEIGHTS_FILE), [METRICS_FILE]: await fed.global.readFile(merges[2]!.oid, METRICS_FILE) };
  const lower = await fed.global.writeCommit({ files, parents: commit.parents, message: commit.message.replace(/^Fedgit-Privacy-Epsilon: .*$/m, 'Fedgit-Privacy-Epsilon: 0.1'), author: commit.author });
  assert.match(failures(await fed.audit(lower)), /privacy trailers/);

  // The secret appears in no log line and no git object of any repository (raw or hex).
  const secret = await readFile(fed.secretFile);
  assert.equal((await stat(fed.secretFile)).mode & 0o777, 0o600, 'the secret file is the owner\'s alone');
  const logs = fed.lines.join('\n');
  assert.ok(!logs.includes(secret.toString('hex')) && !logs.includes(secret.toString('base64')));
  for (const repo of ['global.git', 'plan.git', ...EDGES.map((e) => `edge-${e}.git`)]) {
    const objects = execFileSync('git', ['--git-dir', path.join(fed.repos, repo), 'cat-file', '--batch-all-objects', '--batch'], { maxBuffer: 1 << 28 });
    assert.ok(!objects.includes(secret) && !objects.includes(Buffer.from(secret.toString('hex'))), `${repo} holds no trace of the secret`);
  }
  // Nor a round's seed, which would let anyone subtract that round's noise.
  const seed1 = await fed.seedOf(1);
  const globalObjects = execFileSync('git', ['--git-dir', path.join(fed.repos, 'global.git'), 'cat-file', '--batch-all-objects', '--batch'], { maxBuffer: 1 << 28 });
  assert.ok(!globalObjects.includes(seed1) && !globalObjects.includes(Buffer.from(seed1.toString('hex'))));
});

test('a budget that allows 2 rounds: the aggregator stops after round 2, tags it, and says why', async (t) => {
  // z = 1.1, δ = 1e-5: ε after 2 rounds ≈ 7.4, after 3 rounds > 8.
  assert.ok(epsilonAfter(2, 1e-5, 1.1) <= 8 && epsilonAfter(3, 1e-5, 1.1) > 8);
  const fed = await startDpFederation(t, `${toyPlan({ rounds: 5, edges: EDGES, minEdges: 3 })}${privacyYaml(1.1, 8)}`);
  await fed.round();
  const second = await fed.round();
  assert.equal(second.round, 2);
  assert.equal(await readFinalTag(fed.global, fed.plan), second.oid, 'round 2 is tagged final');
  assert.ok(fed.lines.some((l) => /^info privacy budget reached: round 3 would take ε past targetEpsilon 8 at δ 0\.00001; stopping after 2 of 5 rounds/.test(l)), fed.lines.join('\n'));
  const third = await fed.round();
  assert.equal(third.oid, second.oid, 'no third merge');
  assert.equal((await readGlobalHistory(fed.global, fed.plan)).length, 3);
  const seed = await runCli(['noise-seed', '--round', '3', '--out', path.join(fed.dir, 'round-3.seed'), '--repos', fed.repos, '--noise-secret', fed.secretFile], { cwd: fed.dir });
  assert.equal(seed.code, 1, seed.stdout + seed.stderr);
  assert.match(seed.stderr, /noise-seed: plan toy \([0-9a-f]{8}\) ended at round 2 \(tagged final, e\.g\. by its privacy budget\): round 3 was never merged/);
});

test('fedgit audit of a DP merge: --noise-secret and --noise-seed-file recompute the noise; bad files are refused by name, their content never printed', async (t) => {
  const fed = await startDpFederation(t, `${toyPlan({ rounds: 1, edges: EDGES, minEdges: 3 })}${privacyYaml(5, 8)}`);
  const merge = await fed.round();
  const audit = (...flags: string[]) => runCli(['audit', merge.oid, '--repos', fed.repos, ...flags], { cwd: fed.dir });
  const bitForBit = /ok {3}recomputed DP-FedAvg .* matches the stored weights bit for bit/;

  const bySecret = await audit('--noise-secret', fed.secretFile);
  assert.equal(bySecret.code, 0, bySecret.stdout + bySecret.stderr);
  assert.match(bySecret.stdout, bitForBit);
  const seedFile = path.join(fed.dir, 'round-1.seed');
  await writeFile(seedFile, `${(await fed.seedOf(1)).toString('hex')}\n`, { mode: 0o600 });
  const bySeed = await audit('--noise-seed-file', seedFile);
  assert.equal(bySeed.code, 0, bySeed.stdout + bySeed.stderr);
  assert.match(bySeed.stdout, bitForBit);
  const seedless = await audit();
  assert.equal(seedless.code, 0, seedless.stdout + seedless.stderr);
  assert.doesNotMatch(seedless.stdout, bitForBit);

  const secretHex = (await readFile(fed.secretFile)).toString('hex');
  const otherRound = path.join(fed.dir, 'round-2.seed');
  await writeFile(otherRound, (await fed.seedOf(2)).toString('hex'));
  assert.equal((await audit('--noise-seed-file', otherRound)).code, 1, 'another round\'s seed fails the audit');
  const notHex = path.join(fed.dir, 'not-a-seed');
  await writeFile(notHex, 'zz');
  const refusals = [
    [['--noise-seed-file', notHex], /audit: .*not-a-seed must hold one round's noise seed as 64 hexadecimal digits/],
    [['--noise-seed-file', path.join(fed.dir, 'missing')], /cannot read the noise seed file .*missing: ENOENT/],
    [['--noise-secret', seedFile], /the DP noise secret .*round-1\.seed must hold 32 bytes/],
    [['--noise-secret', fed.secretFile, '--noise-seed-file', seedFile], /give --noise-seed-file or --noise-secret, not both/],
  ] as const;
  for (const [flags, message] of refusals) {
    const r = await audit(...flags);
    assert.ok(r.code === 2 || r.code === 3, `${flags.join(' ')}: exit ${r.code}`);
    assert.match(r.stderr, message);
    assert.ok(!(r.stdout + r.stderr).includes(secretHex), 'the secret is never printed');
  }
});

test("an aggregator's participant config names its DP noise secret (relative to the file); an edge's cannot", async (t) => {
  const dir = await tempDir(t, 'fedgit-dp-config-');
  const write = async (name: string, yaml: string) => (await writeFile(path.join(dir, name), yaml), path.join(dir, name));
  const aggregator = await readParticipantConfig(await write('aggregator.yaml', 'role: aggregator\nrepos: { root: repos }\nnoiseSecret: state/dp-noise.key\n'));
  assert.equal(aggregator.role === 'aggregator' && aggregator.noiseSecret, path.join(dir, 'state', 'dp-noise.key'));
  await assert.rejects(readParticipantConfig(await write('edge.yaml', 'role: edge\nname: hospital-a\nrepos: { root: repos }\nnoiseSecret: x.key\n')), /edge\.yaml:4.*noiseSecret/);
});

test('fedgit noise-seed reveals one merged round\'s seed (0600) that audits bit for bit; a wrong seed fails; unmerged rounds, wrong secrets and existing files are refused', async (t) => {
  const fed = await startDpFederation(t, `${toyPlan({ rounds: 3, edges: EDGES, minEdges: 3 })}${privacyYaml(5, 8)}`);
  const first = await fed.round();
  await fed.round();
  const secretHex = (await readFile(fed.secretFile)).toString('hex');
  const cli = (...args: string[]) => runCli(args, { cwd: fed.dir });
  const noiseSeed = (...args: string[]) => cli('noise-seed', '--repos', fed.repos, '--noise-secret', fed.secretFile, ...args);
  const bitForBit = /ok {3}recomputed DP-FedAvg .* matches the stored weights bit for bit/;
  const say = (r: { stdout: string; stderr: string }) => r.stdout + r.stderr;

  const seedFile = path.join(fed.dir, 'round-1.seed');
  const written = await noiseSeed('--round', '1', '--out', seedFile);
  assert.equal(written.code, 0, say(written));
  assert.equal((await stat(seedFile)).mode & 0o777, 0o600);
  assert.equal((await readFile(seedFile, 'utf8')).trim(), (await fed.seedOf(1)).toString('hex'));
  assert.match(written.stdout, new RegExp(`fedgit audit ${first.oid} --noise-seed-file`));
  assert.ok(!say(written).includes((await fed.seedOf(1)).toString('hex')) && !say(written).includes(secretHex), 'neither the seed nor the secret is printed');
  const audited = await cli('audit', first.oid, '--repos', fed.repos, '--noise-seed-file', seedFile);
  assert.equal(audited.code, 0, say(audited));
  assert.match(audited.stdout, bitForBit);

  // A wrong seed: round 2's (revealed the same way) or any other 32 bytes, for round 1's merge.
  const round2 = path.join(fed.dir, 'round-2.seed');
  assert.equal((await noiseSeed('--round', '2', '--out', round2)).code, 0);
  const random = path.join(fed.dir, 'random.seed');
  await writeFile(random, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  for (const wrong of [round2, random]) {
    const r = await cli('audit', first.oid, '--repos', fed.repos, '--noise-seed-file', wrong);
    assert.equal(r.code, 1, say(r));
    assert.match(r.stdout, /FAIL the noise seed given matches the commitment/);
  }

  // The aggregator's config names its secret: the same seed without --noise-secret.
  const config = path.join(fed.dir, 'aggregator.yaml');
  await writeFile(config, `role: aggregator\nrepos: { root: ${fed.repos} }\nnoiseSecret: ${fed.secretFile}\n`);
  const viaConfig = path.join(fed.dir, 'via-config.seed');
  const r = await cli('noise-seed', '--config', config, '--round', '1', '--out', viaConfig);
  assert.equal(r.code, 0, say(r));
  assert.equal(await readFile(viaConfig, 'utf8'), await readFile(seedFile, 'utf8'));

  const otherSecret = path.join(fed.dir, 'other.key');
  await writeFile(otherSecret, Buffer.alloc(32, 7), { mode: 0o600 });
  const refused = path.join(fed.dir, 'refused.seed');
  const refusals = [
    [['--round', '3', '--out', refused], 1, /noise-seed: round 3 of plan toy \([0-9a-f]{8}\) is not merged yet \(the global head is round 2\); a seed revealed before its merge would let an edge cancel the noise/],
    [['--round', '0', '--out', refused], 2, /--round takes a round number ≥ 1 \(round 0 adds no noise\)/],
    [['--round', '4', '--out', refused], 2, /noise-seed: plan toy \([0-9a-f]{8}\) has 3 rounds, there is no round 4/],
    [['--round', 'one', '--out', refused], 2, /noise-seed: which round\? give --round N/],
    [['--round', '1'], 2, /noise-seed: where\? give --out FILE/],
    [['--round', '1', '--out', seedFile], 2, /round-1\.seed exists; a seed file is never overwritten/],
    [['--round', '1', '--out', refused, '--noise-secret', otherSecret], 3, /the secret .*other\.key does not give the seed the merge of round 1 \([0-9a-f]{8}\) committed to/],
  ] as const;
  for (const [flags, code, message] of refusals) {
    const result = (flags as readonly string[]).includes('--noise-secret') ? await cli('noise-seed', '--repos', fed.repos, ...flags) : await noiseSeed(...flags);
    assert.equal(result.code, code, `${flags.join(' ')}: ${say(result)}`);
    assert.match(result.stderr, message);
    assert.ok(!say(result).includes(secretHex));
  }
  await assert.rejects(stat(refused), /ENOENT/, 'nothing written when refused');
  assert.equal((await readFile(seedFile, 'utf8')).trim(), (await fed.seedOf(1)).toString('hex'), 'the existing seed file is untouched');
});
