/**
 * `fedgit experiment`: synthetic cohort → central training → federated
 * training through `fedgit run` → both final models on the test set.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readLabelsCsv } from '../edge-app/cohort/index.js';
import { evaluateRegionSamples } from '../edge-app/aspects/region-app.js';
import { REGION_ARCHITECTURE, initialRegionWeights } from '../edge-app/aspects/region-spec.js';
import { loadRegionCohort } from '../edge-app/preprocess/region-cohort.js';
import { parseSafetensors, renderSafetensors } from '../operator/checkpoint/safetensors.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import { ensureCohort, experimentCohortParts, type Say } from './cohort.js';
import { loadCentralData, trainCentral, type CentralResult } from './central.js';
import { buildPlan, checkTorchAvailable, runFederatedChild, writeTorchEdgeConfig, type EngineChoice, type ExperimentPlan, type FederatedRun } from './federated.js';
import type { Tensors } from '../operator/contracts.js';
import { renderReportMarkdown, renderReportSummary, type ExperimentReport } from './report.js';
import { ExperimentFailed, ExperimentUsage } from './errors.js';
import { writeHtmlReports } from './html-report.js';
import { testPredictions, type ExperimentPredictions } from './predictions.js';
import { examplesFor } from './example-slices.js';

export type ExperimentSettings = {
  readonly data: string;
  readonly work: string;
  readonly planTemplate: string;
  readonly rounds?: number;
  readonly epochsPerRound?: number;
  readonly seed?: number;
  readonly engines: Readonly<Record<string, EngineChoice>>;
  /** Training volumes per edge and test volumes, when the cohort is generated. */
  readonly perEdge: number;
  readonly testCount: number;
  readonly matrix: number;
  readonly dataSeed: number;
  /** Reuse complete cohort folders written with other settings (`--data` given, no generation flag). */
  readonly keepCohort?: boolean;
  /** Train central while the federation runs (two arms share the cores). */
  readonly parallel: boolean;
  readonly python: string;
  readonly timeoutSeconds: number;
  /** The fedgit entry point that runs the federation as a child process. */
  readonly cli: string;
  readonly say?: Say;
};

export type ExperimentOutcome = { readonly report: ExperimentReport; readonly files: string[] };

const elapsed = (since: number) => `${((Date.now() - since) / 1000).toFixed(0)} s`;

/**
 * Registers every volume of a folder and computes its features into the folder's cache, with
 * progress; a volume the intake or registration refuses is named and left out (as an edge would).
 */
async function preprocessFolder(folder: string, say: Say): Promise<void> {
  let lastSaid = 0;
  const cohort = await loadRegionCohort(folder, {
    onProgress: (done, total, _id, cached) => {
      if (done === total || Date.now() - lastSaid > 10_000) {
        lastSaid = Date.now();
        say(`[experiment] ${folder}: ${done}/${total} volumes registered and measured${cached ? ' (cached)' : ''}`);
      }
    },
    onRefused: (id, message) => say(`[experiment] ${folder}: left out ${id}: ${message}`),
  });
  if (cohort.refused.length) say(`[experiment] ${folder}: ${cohort.refused.length} of ${cohort.refused.length + cohort.count} volumes left out`);
}

/** What every step of one run needs: the settings, the checked plan, and where things go. */
type Run = {
  readonly s: ExperimentSettings;
  readonly say: Say;
  readonly started: number;
  readonly timings: Record<string, number>;
  readonly plan: ExperimentPlan['plan'];
  readonly options: ExperimentPlan['options'];
  readonly edges: readonly string[];
  readonly engines: Record<string, EngineChoice>;
  readonly work: string;
  readonly data: string;
  readonly planFile: string;
  readonly totalEpochs: number;
};

type Evaluation = { readonly test: Awaited<ReturnType<typeof loadRegionCohort>>; readonly metrics: ExperimentReport['test']; readonly predictions: ExperimentPredictions; readonly seconds: number };

export async function runExperiment(s: ExperimentSettings): Promise<ExperimentOutcome> {
  const run = await prepare(s);
  const { say, started, timings, data, plan, options } = run;

  say(`[experiment] 1/4 cohort in ${data}`);
  const cohort = await prepareCohort(run);

  const initial = initialRegionWeights(plan.seed, options.hidden);
  const { central, federated } = await trainBothArms(run, initial);
  timings['central training'] = central.trainSeconds;
  timings['federated training'] = federated.seconds;
  const centralWeights = await writeCentralWeights(run, central);

  say(`[experiment] 4/4 evaluation on ${path.join(data, 'test')} (${elapsed(started)})`);
  const evaluation = await evaluateArms(run, initial, central, federated);
  timings.evaluation = evaluation.seconds;
  timings.total = (Date.now() - started) / 1000;
  const report = await assembleReport(run, { cohort, central, centralWeights, federated, evaluation });
  const files = await writeReports(run, report, federated);
  say('');
  say(renderReportSummary(report));
  say('');
  say(`[experiment] done in ${elapsed(started)}; report written to:`);
  for (const file of files) say(`  ${file}`);
  return { report, files };
}

/** Everything is checked before anything long starts; the plan the federation will run is written to the work folder. */
async function prepare(s: ExperimentSettings): Promise<Run> {
  const say = s.say ?? ((line: string) => console.log(line));
  const started = Date.now();
  let templateText: string;
  try {
    templateText = await readFile(s.planTemplate, 'utf8');
  } catch (e) {
    throw new ExperimentUsage(`cannot read plan template ${s.planTemplate}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const built = buildPlan(templateText, s.planTemplate, { ...(s.rounds ? { rounds: s.rounds } : {}), ...(s.epochsPerRound ? { epochsPerRound: s.epochsPerRound } : {}), ...(s.seed !== undefined ? { seed: s.seed } : {}) });
  const { plan, options } = built;
  const edges = plan.edges.map((e) => e.name);
  for (const edge of Object.keys(s.engines)) {
    if (!edges.includes(edge)) throw new ExperimentUsage(`--engine names ${edge}, which is not an edge of plan ${plan.name} (${edges.join(', ')})`);
  }
  if (edges.includes('test')) throw new ExperimentUsage(`plan ${plan.name} has an edge named 'test', which is the name of the test folder`);
  const engines = Object.fromEntries(edges.map((e) => [e, s.engines[e] ?? 'tfjs'])) as Record<string, EngineChoice>;
  if (Object.values(engines).includes('torch')) await checkTorchAvailable(s.python);

  const work = path.resolve(s.work);
  await mkdir(work, { recursive: true });
  const planFile = path.join(work, `${plan.name}-plan.yaml`);
  await writeFile(planFile, built.text);
  say(`[experiment] plan ${plan.name}: ${plan.rounds} rounds × ${plan.epochsPerRound} epochs, model ${REGION_ARCHITECTURE} (${options.hidden} hidden units), ` +
    `batch ${options.batchSize}, learning rate ${options.learningRate}, seed ${plan.seed}; edges ${edges.map((e) => `${e} (${engines[e]})`).join(', ')}; ` +
    `${plan.privacy ? `DP-FedAvg (budget ε ${plan.privacy.targetEpsilon} at δ ${plan.privacy.delta}, z ${plan.privacy.noiseMultiplier}, C ${plan.privacy.clipNorm}; central training has no DP); ` : ''}written to ${planFile}`);
  return { s, say, started, timings: {}, plan, options, edges, engines, work, data: path.resolve(s.data), planFile, totalEpochs: plan.rounds * plan.epochsPerRound };
}

/**
 * The cohort (generated where missing), then registration and features once for every folder, before
 * the two arms start side by side: both then read them from each folder's cache.
 */
async function prepareCohort({ s, say, started, timings, edges, data }: Run): Promise<Awaited<ReturnType<typeof ensureCohort>>> {
  const parts = experimentCohortParts(data, { edges, perEdge: s.perEdge, test: s.testCount, dataSeed: s.dataSeed, matrix: s.matrix });
  const cohort = await ensureCohort(parts, { say, keepWritten: s.keepCohort ?? false });
  timings.synth = cohort.seconds;
  say(`[experiment] cohort ready (${elapsed(started)})`);
  const preprocessStart = Date.now();
  for (const folder of [...edges.map((e) => path.join(data, e)), path.join(data, 'test')]) await preprocessFolder(folder, say);
  timings.preprocessing = (Date.now() - preprocessStart) / 1000;
  say(`[experiment] registration and features ready in ${timings.preprocessing.toFixed(0)} s (${elapsed(started)})`);
  return cohort;
}

/** Central and federated training, at the same time (default) or one after the other (`--sequential`). */
async function trainBothArms(run: Run, initial: Tensors): Promise<{ central: CentralResult; federated: FederatedRun }> {
  const { s, say, started } = run;
  if (s.parallel) {
    say(`[experiment] 2/4 and 3/4: central and federated training at the same time`);
    const federated = trainFederatedArm(run);
    federated.catch(() => undefined); // awaited below
    const central = await trainCentralArm(run, initial);
    return { central, federated: await federated };
  }
  say(`[experiment] 2/4 central training (${elapsed(started)})`);
  const central = await trainCentralArm(run, initial);
  say(`[experiment] 3/4 federated training (${elapsed(started)})`);
  return { central, federated: await trainFederatedArm(run) };
}

async function trainCentralArm({ say, plan, options, edges, data, totalEpochs }: Run, initial: Tensors): Promise<CentralResult> {
  say(`[experiment] central training: ${totalEpochs} epochs on the union of ${edges.join(' + ')}`);
  await selectBackend();
  const loadStart = Date.now();
  const split = await loadCentralData(edges.map((e) => path.join(data, e)), options.validationFraction, say);
  const loadSeconds = (Date.now() - loadStart) / 1000;
  const { hidden, batchSize, learningRate, validationFraction } = options;
  const result = await trainCentral(initial, split, { hidden, batchSize, learningRate, validationFraction, epochs: totalEpochs, seed: plan.seed }, say);
  say(`[experiment] central training done in ${result.trainSeconds.toFixed(1)} s (+ ${loadSeconds.toFixed(1)} s loading)`);
  return { ...result, loadSeconds };
}

async function trainFederatedArm({ s, say, options, edges, engines, work, data, planFile }: Run): Promise<FederatedRun> {
  say(`[experiment] federated training: fedgit run ${planFile}`);
  const repos = path.join(work, 'repos'), logs = path.join(work, 'logs'), results = path.join(work, 'results');
  const edgeConfigArgs: string[] = [];
  for (const edge of edges) {
    if (engines[edge] !== 'torch') continue;
    const file = await writeTorchEdgeConfig({ dir: work, edge, repos, data: path.join(data, edge), logs, options, python: s.python });
    edgeConfigArgs.push('--edge-config', `${edge}=${file}`);
  }
  const args = [planFile, '--repos', repos, '--logs', logs, '--results', results, '--data-root', data, '--new', '--timeout', String(s.timeoutSeconds), ...edgeConfigArgs];
  const run = await runFederatedChild(args, { cli: s.cli, say, prefix: '  | ' });
  say(`[experiment] federated training done in ${run.seconds.toFixed(1)} s; final weights ${run.exported}`);
  return run;
}

async function writeCentralWeights({ work, totalEpochs }: Run, central: CentralResult): Promise<string> {
  const file = path.join(work, 'central', 'weights.safetensors');
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, renderSafetensors(central.weights, { 'fedgit.architecture': REGION_ARCHITECTURE, 'fedgit.experiment': 'central', 'fedgit.epochs': String(totalEpochs) }));
  return file;
}

/** Round 0, central and federated on the test folder: metrics and per-scan predictions. */
async function evaluateArms({ data, options }: Run, initial: Tensors, central: CentralResult, federated: FederatedRun): Promise<Evaluation> {
  const evalStart = Date.now();
  const test = await loadRegionCohort(path.join(data, 'test'));
  let federatedWeights;
  try {
    federatedWeights = parseSafetensors(await readFile(federated.exported), federated.exported).tensors;
  } catch (e) {
    throw new ExperimentFailed(`cannot read the federated final weights ${federated.exported}: ${(e as Error).message}`, { file: federated.exported }, { cause: e });
  }
  const { hidden } = options;
  const metrics = {
    initial: evaluateRegionSamples(initial, test.samples, hidden),
    central: evaluateRegionSamples(central.weights, test.samples, hidden),
    federated: evaluateRegionSamples(federatedWeights, test.samples, hidden),
  };
  const predictions = testPredictions({ initial, central: central.weights, federated: federatedWeights }, test.samples, hidden);
  return { test, metrics, predictions, seconds: (Date.now() - evalStart) / 1000 };
}

type Arms = {
  readonly cohort: Awaited<ReturnType<typeof ensureCohort>>;
  readonly central: CentralResult;
  readonly centralWeights: string;
  readonly federated: FederatedRun;
  readonly evaluation: Evaluation;
};

async function assembleReport({ s, say, timings, plan, options, edges, engines, work, data, planFile, totalEpochs }: Run, { cohort, central, centralWeights, federated, evaluation }: Arms): Promise<ExperimentReport> {
  const trainCounts: Record<string, number> = {};
  for (const e of edges) trainCounts[e] = (await readLabelsCsv(path.join(data, e, 'labels.csv'))).length;
  const { test, metrics, predictions } = evaluation;
  return {
    kind: 'fedgit-experiment/v1',
    createdAt: new Date().toISOString(),
    settings: {
      plan: planFile,
      rounds: plan.rounds,
      epochsPerRound: plan.epochsPerRound,
      totalEpochs,
      hidden: options.hidden,
      batchSize: options.batchSize,
      learningRate: options.learningRate,
      validationFraction: options.validationFraction,
      seed: plan.seed,
      engines,
      data,
      matrix: cohort.generated.length + cohort.reused.length > 0 ? s.matrix : null,
      volumes: { train: trainCounts, test: test.count },
    },
    central: {
      weights: centralWeights,
      trainVolumes: central.trainCount,
      validationVolumes: central.validationCount,
      trainSeconds: central.trainSeconds,
      loadSeconds: central.loadSeconds,
      cpuSeconds: central.cpuSeconds,
      epochs: central.epochs,
    },
    federated: { weights: federated.exported, finalCommit: federated.finalCommit ?? null, wallSeconds: federated.seconds, repos: path.join(work, 'repos') },
    test: metrics,
    predictions,
    examples: await examplesFor(path.join(data, 'test'), test.samples, predictions, say),
    timings,
  };
}

/** comparison.md and comparison.json next to the federated weights and in the work folder, and the HTML reports. */
async function writeReports({ s, say, work }: Run, report: ExperimentReport, federated: FederatedRun): Promise<string[]> {
  const markdown = renderReportMarkdown(report);
  const json = JSON.stringify(report, null, 2) + '\n';
  const files: string[] = [];
  for (const dir of [path.dirname(federated.exported), work]) {
    for (const [name, text] of [['comparison.md', markdown], ['comparison.json', json]] as const) {
      const file = path.join(dir, name);
      await writeFile(file, text);
      files.push(file);
    }
  }
  files.push(...await writeHtmlReports({ cli: s.cli, repos: path.join(work, 'repos'), comparison: path.join(work, 'comparison.json'), dirs: [work, path.dirname(federated.exported)], say }));
  return files;
}
