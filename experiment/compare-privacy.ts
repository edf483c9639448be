/**
 * `npm run compare-privacy`: the default ASPECTS experiment (config/aspects.yaml on the default
 * cohort) federated without DP and with client-level DP-FedAvg at target ε 1, 3 and 8 (issue 14).
 *
 * The clipping norm C is the median of the round-1 update norms of the run without DP (McMahan,
 * Ramage, Talwar & Zhang, ICLR 2018, choose C from the unclipped updates' norms), read from its
 * repositories, never from test results. For each target ε the noise multiplier z is the smallest
 * (3 significant digits, rounded up) with which the plan's rounds fit the budget at δ. Every DP
 * merge is audited bit for bit with the aggregator's secret, then every round's global model is
 * evaluated on the test set with `fedgit evaluate`.
 *
 *   node dist/experiment/compare-privacy.js [--work DIR] [--data DIR] [--delta D]
 *
 * Writes DIR/privacy.md (the tables) and prints it.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_ROOT, buildPlan } from './federated.js';
import { fedgit, globalRecords, perRoundMetrics, type RoundMetrics } from './sweep-tools.js';
import { Repository } from '../operator/git/repository.js';
import { readWeights } from '../operator/store/federation.js';
import { updateNorm } from '../operator/reconcile/merge.js';
import { noiseMultiplierFor } from '../operator/privacy/calibrate.js';

const TARGET_EPSILONS = [1, 3, 8];

type Privacy = { readonly targetEpsilon: number; readonly delta: number; readonly noiseMultiplier: number; readonly clipNorm: number };
type Arm = { readonly name: string; readonly privacy?: Privacy; readonly roundsRun: number; readonly epsilon?: string; readonly metrics: readonly RoundMetrics[] };
type Sweep = { readonly work: string; readonly data: string; readonly template: string; readonly plannedRounds: number; readonly edges: number };

/** The round-1 updates' norms ‖local − round 0‖ of a finished run, in edge-name order. */
async function firstRoundNorms(repos: string): Promise<number[]> {
  const [round0, round1] = await globalRecords(repos);
  if (!round0 || !round1) throw new Error(`${repos}: the run has no round 1`);
  const previous = await readWeights(new Repository(path.join(repos, 'global.git')), round0.oid);
  const norms: number[] = [];
  for (const m of round1.merged) {
    const tensors = await readWeights(new Repository(path.join(repos, `edge-${m.edge}.git`)), m.commit);
    norms.push(updateNorm({ edge: m.edge, datasetSize: m.datasetSize, tensors }, previous));
  }
  return norms;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b), middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** The aggregator's secret of a run: the one key file `fedgit run` created under the run's XDG_STATE_HOME. */
async function secretFileOf(stateHome: string): Promise<string> {
  const folder = path.join(stateHome, 'fedgit');
  const keys = (await readdir(folder)).filter((f) => f.endsWith('.key'));
  if (keys.length !== 1) throw new Error(`${folder}: expected one DP noise secret, found ${keys.length}`);
  return path.join(folder, keys[0]!);
}

/** Runs one arm through `fedgit experiment`; a DP arm's merges must all audit bit for bit. */
async function runArm(sweep: Sweep, name: string, privacy?: Privacy): Promise<Arm> {
  const plan = path.join(sweep.work, `${name}.yaml`);
  const privacyYaml = privacy ? `privacy: { targetEpsilon: ${privacy.targetEpsilon}, delta: ${privacy.delta}, noiseMultiplier: ${privacy.noiseMultiplier}, clipNorm: ${privacy.clipNorm} }\n` : '';
  await writeFile(plan, `${sweep.template.trimEnd()}\n${privacyYaml}`);
  const runDir = path.join(sweep.work, `work-${name}`);
  // The aggregator keeps its secret under XDG_STATE_HOME: one per run, inside the run's folder.
  const stateHome = path.join(runDir, 'state');
  await fedgit(['experiment', '--data', sweep.data, '--work', runDir, '--plan', plan], { XDG_STATE_HOME: stateHome });
  const repos = path.join(runDir, 'repos');
  const records = await globalRecords(repos);
  const last = records.at(-1)!;
  if (privacy) {
    const secret = await secretFileOf(stateHome);
    for (const merge of records.slice(1)) await fedgit(['audit', merge.oid, '--repos', repos, '--noise-secret', secret]);
  }
  const metrics = await perRoundMetrics(runDir, path.join(sweep.data, 'test'));
  return { name, ...(privacy ? { privacy } : {}), roundsRun: last.round, ...(last.privacy ? { epsilon: last.privacy.epsilon } : {}), metrics };
}

function tables(sweep: Sweep, arms: readonly Arm[], norms: readonly number[]): string {
  const summary = arms.map((a) => {
    const p = a.privacy;
    const noise = p ? `${p.noiseMultiplier} | ${p.clipNorm} | ${((p.noiseMultiplier * p.clipNorm) / sweep.edges).toPrecision(3)}` : '– | – | –';
    const final = a.metrics.at(-1)!;
    return `| ${p ? `ε ≤ ${p.targetEpsilon}` : 'no DP'} | ${noise} | ${a.roundsRun} of ${sweep.plannedRounds} | ${a.epsilon ?? '–'} | ${final.auc.toFixed(3)} | ${final.f1.toFixed(3)} |`;
  });
  const rounds = Math.max(...arms.map((a) => a.metrics.length));
  const perRound = arms.map((a) => `| ${a.privacy ? `ε ≤ ${a.privacy.targetEpsilon}` : 'no DP'} | ${Array.from({ length: rounds }, (_, r) => a.metrics[r]?.auc.toFixed(3) ?? '').join(' | ')} |`);
  return [
    `Round-1 update norms without DP: ${norms.map((n) => n.toPrecision(4)).join(', ')}; C = their median, to 2 significant digits. δ = ${arms.find((a) => a.privacy)?.privacy?.delta}.`,
    '',
    '| plan | z | C | noise std per coordinate z·C/n | rounds run | ε spent | final macro AUC | final class-1 F1 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...summary,
    '',
    `| macro AUC after round | ${Array.from({ length: rounds }, (_, r) => String(r)).join(' | ')} |`,
    `|---|${Array(rounds).fill('---:').join('|')}|`,
    ...perRound,
  ].join('\n');
}

const { values } = parseArgs({ options: { work: { type: 'string', default: 'results/compare-privacy' }, data: { type: 'string', default: 'data/aspects' }, delta: { type: 'string', default: '0.00001' } } });
const delta = Number(values.delta);
if (!(delta > 0 && delta < 1)) throw new Error(`--delta takes a number in (0, 1), got '${values.delta}'`);
const templateFile = path.join(PACKAGE_ROOT, 'config', 'aspects.yaml');
const template = await readFile(templateFile, 'utf8');
const { plan } = buildPlan(template, templateFile, {});
const sweep: Sweep = { work: path.resolve(values.work!), data: path.resolve(values.data!), template, plannedRounds: plan.rounds, edges: plan.edges.length };
await mkdir(sweep.work, { recursive: true });
const arms: Arm[] = [await runArm(sweep, 'no-dp')];
const norms = await firstRoundNorms(path.join(sweep.work, 'work-no-dp', 'repos'));
const clipNorm = Number(median(norms).toPrecision(2));
for (const targetEpsilon of TARGET_EPSILONS) {
  const noiseMultiplier = noiseMultiplierFor(plan.rounds, targetEpsilon, delta);
  arms.push(await runArm(sweep, `dp-epsilon-${targetEpsilon}`, { targetEpsilon, delta, noiseMultiplier, clipNorm }));
}
const markdown = `${tables(sweep, arms, norms)}\n`;
await writeFile(path.join(sweep.work, 'privacy.md'), markdown);
console.log(`\n${markdown}\nwritten to ${path.join(sweep.work, 'privacy.md')}`);
