/**
 * `npm run compare-strategies`: FedAvg vs FedProx vs FedAdam on a non-IID ASPECTS cohort, the
 * comparison issue 13 asks for. Hospital A's scanner profile with 90 % of its patients showing
 * ischaemic change, hospital B's (thicker, tilted slices, noisier) with 30 %; the test set mixes
 * both scanners at 60 %. Each strategy runs the default experiment's plan (config/aspects.yaml)
 * through `fedgit experiment` (registration is done once and cached in the data folders), then
 * every round's global model is evaluated on the test set with `fedgit evaluate`.
 *
 *   node dist/experiment/compare-strategies.js [--work DIR] [--count N]
 *
 * Writes DIR/strategies.md (the table) and prints it. Nothing is tuned for this cohort: FedProx
 * uses its default μ, FedAdam η = 0.01 with the paper's β1, β2, τ.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT } from './federated.js';
import { fedgit, perRoundMetrics, type RoundMetrics } from './sweep-tools.js';

const STRATEGIES: ReadonlyArray<readonly [name: string, yaml: string]> = [
  ['fedavg', 'fedavg'],
  ['fedprox', '{ id: fedprox, options: { mu: 0.01 } }'],
  ['fedadam', '{ id: fedadam, options: { eta: 0.01 } }'],
];
const SITES = [
  { folder: 'hospital-a', profile: 'hospital-a', lesionRate: 0.9, seed: 11 },
  { folder: 'hospital-b', profile: 'hospital-b', lesionRate: 0.3, seed: 12 },
  { folder: 'test', profile: 'mixed', lesionRate: 0.6, seed: 13 },
];
const TARGETS = [0.95, 0.98];

async function writeCohort(data: string, count: number): Promise<void> {
  for (const site of SITES) {
    if (existsSync(path.join(data, site.folder, 'labels.csv'))) continue;
    await fedgit(['synth', '--out', path.join(data, site.folder), '--count', String(count), '--seed', String(site.seed), '--profile', site.profile, '--lesion-rate', String(site.lesionRate)]);
  }
}

function table(results: ReadonlyArray<readonly [string, readonly RoundMetrics[]]>): string {
  const rounds = Math.max(...results.map(([, r]) => r.length));
  const head = `| strategy | ${Array.from({ length: rounds }, (_, r) => `round ${r}`).join(' | ')} | ${TARGETS.map((t) => `rounds to ${t}`).join(' | ')} | final class-1 F1 |`;
  const rule = `|---|${Array(rounds + TARGETS.length + 1).fill('---:').join('|')}|`;
  const rows = results.map(([name, r]) => {
    const reach = TARGETS.map((t) => { const i = r.findIndex((m) => m.auc >= t); return i < 0 ? 'not reached' : String(i); });
    return `| ${name} | ${r.map((m) => m.auc.toFixed(3)).join(' | ')} | ${reach.join(' | ')} | ${r.at(-1)!.f1.toFixed(3)} |`;
  });
  return [head, rule, ...rows].join('\n');
}

const { values } = parseArgs({ options: { work: { type: 'string', default: 'results/compare-strategies' }, count: { type: 'string', default: '60' } } });
const work = path.resolve(values.work!);
const count = Number(values.count);
if (!Number.isInteger(count) || count < 10) throw new Error(`--count takes an integer of at least 10, got '${values.count}'`);
const data = path.join(work, 'data');
await mkdir(work, { recursive: true });
await writeCohort(data, count);
const template = await readFile(path.join(PACKAGE_ROOT, 'config', 'aspects.yaml'), 'utf8');
const results: Array<readonly [string, readonly RoundMetrics[]]> = [];
for (const [name, strategy] of STRATEGIES) {
  const plan = path.join(work, `${name}.yaml`);
  await writeFile(plan, template.replace(/^strategy: .*$/m, `strategy: ${strategy}`));
  const runDir = path.join(work, `work-${name}`);
  await fedgit(['experiment', '--data', data, '--work', runDir, '--plan', plan]);
  results.push([name, await perRoundMetrics(runDir, path.join(data, 'test'))]);
}
const markdown = `Macro AUC on ${count} held-out volumes after each round (non-IID: hospital A ${SITES[0]!.lesionRate * 100} % lesioned, hospital B ${SITES[1]!.lesionRate * 100} %).\n\n${table(results)}\n`;
await writeFile(path.join(work, 'strategies.md'), markdown);
console.log(`\n${markdown}\nwritten to ${path.join(work, 'strategies.md')}`);
