/** `fedgit experiment` and `fedgit synth` refuse bad flags with one clear line and exit code 2, before writing anything. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { runCli, tempDir } from './helpers/temp.js';
import { generateKeyPairSync } from 'node:crypto';
import { buildPlan } from '../experiment/federated.js';
import { ExperimentUsage } from '../experiment/errors.js';
import { publicKeyOf } from '../operator/trust/keys.js';

const cases: Array<{ args: string[]; message: RegExp }> = [
  { args: ['experiment', '--rounds', '0'], message: /--rounds takes an integer from 1 to 10000, got '0'/ },
  { args: ['experiment', '--epochs-per-round', 'two'], message: /--epochs-per-round takes an integer/ },
  { args: ['experiment', '--seed=-1'], message: /--seed takes an integer from 0 to 4294967295, got '-1'/ },
  { args: ['experiment', '--seed', '-1'], message: /experiment: Option '--seed' argument is ambiguous/ },
  { args: ['experiment', '--bogus'], message: /experiment: Unknown option '--bogus' \(see fedgit experiment --help\)/ },
  { args: ['experiment', 'extra'], message: /experiment: unexpected argument 'extra'/ },
  { args: ['experiment', '--engine', 'hospital-a=jax'], message: /--engine takes EDGE=tfjs or EDGE=torch, got 'hospital-a=jax'/ },
  { args: ['experiment', '--engine', 'hospital-z=tfjs'], message: /--engine names hospital-z, which is not an edge of plan aspects \(hospital-a, hospital-b\)/ },
  { args: ['experiment', '--plan', 'no-such-plan.yaml'], message: /cannot read plan template no-such-plan\.yaml: ENOENT/ },
  { args: ['experiment', '--data', 'same', '--work', 'same'], message: /--data and --work must be different folders/ },
  { args: ['synth', '--count', '3'], message: /synth: where\? give --out DIR/ },
  { args: ['synth', '--out', 'x', '--count', '0'], message: /--count takes an integer from 1 to 100000, got '0'/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--matrix', 'big'], message: /--matrix takes an integer/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--profile', 'nope'], message: /synth: unknown profile 'nope' \(known: hospital-a, hospital-b, mixed, independent, aligned\)/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--noise', '6:3'], message: /--noise takes a range LO:HI \(LO ≤ HI\) or one number, got '6:3'/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--orientation', 'RAX'], message: /synth: orientation 'RAX' must be 3 letters/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--orientation', 'RLS'], message: /synth: orientation 'RLS' names the same axis twice/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--storage', 'int8'], message: /synth: storage must be among int16, uint16, float32/ },
  { args: ['synth', '--out', 'x', '--count', '2', '--lesion-rate', '1.5'], message: /synth: lesion rate must be 0–1, got 1\.5/ },
];

test('fedgit experiment / synth refuse bad flags with a clear message', async (t) => {
  const dir = await tempDir(t, 'fedgit-experiment-flags-');
  for (const { args, message } of cases) {
    const r = await runCli(args, { cwd: dir, timeoutMs: 30_000 });
    assert.equal(r.code, 2, `${args.join(' ')}: exit code ${r.code}\n${r.stdout}${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: one line expected, got:\n${r.stderr}`);
    assert.match(lines[0]!, /^fedgit: /);
    assert.match(lines[0]!, message, args.join(' '));
  }
  assert.deepEqual(await readdir(dir), [], 'nothing written');
});

test('fedgit experiment --help and fedgit synth --help print their usage', async (t) => {
  const dir = await tempDir(t, 'fedgit-experiment-help-');
  const e = await runCli(['experiment', '--help'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(e.code, 0);
  assert.match(e.stdout, /usage: fedgit experiment/);
  assert.match(e.stdout, /--epochs-per-round/);
  const s = await runCli(['synth', '--help'], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(s.code, 0);
  assert.match(s.stdout, /usage: fedgit synth --out DIR --count N/);
  assert.match(s.stdout, /--profile NAME/);
  assert.match(s.stdout, /fedgit synth --profile independent --seed 777 --count 90 --out data\/independent/);
  for (const flag of ['--slice-mm', '--noise', '--bias', '--tilt', '--storage', '--orientation', '--lesion-rate', '--region-rate', '--lesion-hu', '--shift', '--rotation', '--table-z']) assert.ok(s.stdout.includes(flag), flag);
});

test("the experiment's plan keeps the template's strategy options, clipping and bounds, and applies the flags", () => {
  const template = `name: aspects
rounds: 8
edges: [{ name: hospital-a, maxDatasetSize: 100 }, hospital-b]
strategy: { id: fedprox, options: { mu: 0.1 } }
clip: { maxNorm: 5 }
maxShare: 0.75
app: { id: aspects-cnn, options: { hidden: 8 } }
`;
  const { plan } = buildPlan(template, 'template.yaml', { rounds: 3, seed: 7 });
  assert.equal(plan.strategy, 'fedprox');
  assert.deepEqual(plan.strategyOptions, { mu: 0.1 });
  assert.deepEqual(plan.clip, { maxNorm: 5 });
  assert.equal(plan.maxShare, 0.75);
  assert.deepEqual(plan.edges.map((e) => [e.name, e.maxDatasetSize]), [['hospital-a', 100], ['hospital-b', undefined]]);
  assert.equal(plan.rounds, 3);
  assert.equal(plan.seed, 7);
});

test("the experiment's plan keeps the template's privacy section (it used to be dropped, so a DP template ran without DP)", () => {
  const template = `name: aspects
rounds: 8
edges: [hospital-a, hospital-b]
strategy: fedavg
privacy: { targetEpsilon: 3, delta: 0.00001, noiseMultiplier: 4.23, clipNorm: 0.9 }
app: { id: aspects-cnn }
`;
  const { plan, text } = buildPlan(template, 'dp.yaml', { rounds: 8 });
  assert.deepEqual(plan.privacy, { targetEpsilon: 3, delta: 0.00001, noiseMultiplier: 4.23, clipNorm: 0.9, samplingRate: 1, conversion: 'balle2020' });
  assert.match(text, /^privacy:$/m, 'the plan file the federation runs states it');
  // The template's privacy is checked like any plan's: a server optimiser with privacy is refused by file and line.
  assert.throws(() => buildPlan(template.replace('strategy: fedavg', 'strategy: fedadam'), 'dp.yaml', {}), /dp\.yaml:4.*fedadam cannot be combined with privacy/);
  // --rounds beyond the budget is not refused here: the aggregator stops at the budget and tags the last merge.
  assert.equal(buildPlan(template, 'dp.yaml', { rounds: 100 }).plan.rounds, 100);
});

test('a template the experiment cannot honour (signing keys, a pretrained start) is refused by field, not dropped', () => {
  const [a, b, c] = [0, 1, 2].map(() => publicKeyOf(generateKeyPairSync('ed25519').privateKey));
  const plain = `name: aspects\nrounds: 2\nedges: [hospital-a, hospital-b]\napp: { id: aspects-cnn }\n`;
  const signed = plain.replace('edges: [hospital-a, hospital-b]', `edges: [{ name: hospital-a, publicKey: '${a}' }, { name: hospital-b, publicKey: '${b}' }]`);
  assert.throws(() => buildPlan(signed, 'signed.yaml', {}), (e: Error) => e instanceof ExperimentUsage && /signed\.yaml: edges\[0\]\.publicKey: .*no signing keys/.test(e.message));
  assert.throws(() => buildPlan(`${plain}aggregator: { publicKey: '${c}' }\n`, 'agg.yaml', {}), /agg\.yaml: aggregator\.publicKey/);
  assert.throws(() => buildPlan(`${plain}pretrained: inference-aspects-0123abcd\n`, 'pre.yaml', {}), /pre\.yaml: pretrained: .*fresh repositories/);
  assert.equal(buildPlan(plain, 'plain.yaml', {}).plan.edges.length, 2);
});
