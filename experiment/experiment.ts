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
import { buildPlan, checkTorchAvailable, runFederatedChild, writeTorchEdgeConfig, type EngineChoice, type FederatedRun } from './federated.js';
import { renderReportMarkdown, renderReportSummary, type ExperimentReport } from './report.js';
import { ExperimentFailed, ExperimentUsage } from './errors.js';
import { writeHtmlReports } from './html-report.js';
import { testPredictions } from './predictions.js';
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

export async function runExperiment(s: ExperimentSettings): Promise<ExperimentOutcome> {
  const say = s.say ?? ((line: string) => console.log(line));
  const started = Date.now();
  const timings: Record<string, number> = {};

  // Everything is checked before anything long starts.
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
  const data = path.resolve(s.data);
  await mkdir(work, { recursive: true });
  const planFile = path.join(work, `${plan.name}-plan.yaml`);
  await writeFile(planFile, built.text);
  const totalEpochs = plan.rounds * plan.epochsPerRound;
  const { hidden } = options;
  say(`[experiment] plan ${plan.name}: ${plan.rounds} rounds × ${plan.epochsPerRound} epochs, model ${REGION_ARCHITECTURE} (${hidden} hidden units), ` +
    `batch ${options.batchSize}, learning rate ${options.learningRate}, seed ${plan.seed}; edges ${edges.map((e) => `${e} (${engines[e]})`).join(', ')}; written to ${planFile}`);

  // 1. cohort
  say(`[experiment] 1/4 cohort in ${data}`);
  const parts = experimentCohortParts(data, { edges, perEdge: s.perEdge, test: s.testCount, dataSeed: s.dataSeed, matrix: s.matrix });
  const cohort = await ensureCohort(parts, { say });
  timings.synth = cohort.seconds;
  say(`[experiment] cohort ready (${elapsed(started)})`);

  // Registration and features once for every folder, before the two arms start side by side:
  // both then read them from each folder's cache instead of registering the same volumes twice.
  const edgeFolders = edges.map((e) => path.join(data, e));
  const preprocessStart = Date.now();
  for (const folder of [...edgeFolders, path.join(data, 'test')]) await preprocessFolder(folder, say);
  timings.preprocessing = (Date.now() - preprocessStart) / 1000;
  say(`[experiment] registration and features ready in ${timings.preprocessing.toFixed(0)} s (${elapsed(started)})`);

  // 2 and 3. central and federated
  const initial = initialRegionWeights(plan.seed, hidden);
  const central = async (): Promise<CentralResult> => {
    say(`[experiment] central training: ${totalEpochs} epochs on the union of ${edges.join(' + ')}`);
    await selectBackend();
    const loadStart = Date.now();
    const split = await loadCentralData(edgeFolders, options.validationFraction, say);
    const loadSeconds = (Date.now() - loadStart) / 1000;
    const result = await trainCentral(initial, split, { hidden, batchSize: options.batchSize, learningRate: options.learningRate, validationFraction: options.validationFraction, epochs: totalEpochs, seed: plan.seed }, say);
    say(`[experiment] central training done in ${result.trainSeconds.toFixed(1)} s (+ ${loadSeconds.toFixed(1)} s loading)`);
    return { ...result, loadSeconds };
  };
  const federated = async (): Promise<FederatedRun> => {
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
  };

  let centralResult: CentralResult;
  let fedRun: FederatedRun;
  if (s.parallel) {
    say(`[experiment] 2/4 and 3/4: central and federated training at the same time`);
    const fed = federated();
    fed.catch(() => undefined); // awaited below
    centralResult = await central();
    fedRun = await fed;
  } else {
    say(`[experiment] 2/4 central training (${elapsed(started)})`);
    centralResult = await central();
    say(`[experiment] 3/4 federated training (${elapsed(started)})`);
    fedRun = await federated();
  }
  timings['central training'] = centralResult.trainSeconds;
  timings['federated training'] = fedRun.seconds;
  const centralWeights = path.join(work, 'central', 'weights.safetensors');
  await mkdir(path.dirname(centralWeights), { recursive: true });
  await writeFile(centralWeights, renderSafetensors(centralResult.weights, { 'fedgit.architecture': REGION_ARCHITECTURE, 'fedgit.experiment': 'central', 'fedgit.epochs': String(totalEpochs) }));

  // 4. evaluation
  say(`[experiment] 4/4 evaluation on ${path.join(data, 'test')} (${elapsed(started)})`);
  const evalStart = Date.now();
  const test = await loadRegionCohort(path.join(data, 'test'));
  let federatedWeights;
  try {
    federatedWeights = parseSafetensors(await readFile(fedRun.exported), fedRun.exported).tensors;
  } catch (e) {
    throw new ExperimentFailed(`cannot read the federated final weights ${fedRun.exported}: ${(e as Error).message}`, { file: fedRun.exported }, { cause: e });
  }
  const metrics = {
    initial: evaluateRegionSamples(initial, test.samples, hidden),
    central: evaluateRegionSamples(centralResult.weights, test.samples, hidden),
    federated: evaluateRegionSamples(federatedWeights, test.samples, hidden),
  };
  const predictions = testPredictions({ initial, central: centralResult.weights, federated: federatedWeights }, test.samples, hidden);
  timings.evaluation = (Date.now() - evalStart) / 1000;
  timings.total = (Date.now() - started) / 1000;
  const trainCounts: Record<string, number> = {};
  for (const e of edges) trainCounts[e] = (await readLabelsCsv(path.join(data, e, 'labels.csv'))).length;

  const report: ExperimentReport = {
    kind: 'fedgit-experiment/v1',
    createdAt: new Date().toISOString(),
    settings: {
      plan: planFile,
      rounds: plan.rounds,
      epochsPerRound: plan.epochsPerRound,
      totalEpochs,
      hidden,
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
      trainVolumes: centralResult.trainCount,
      validationVolumes: centralResult.validationCount,
      trainSeconds: centralResult.trainSeconds,
      loadSeconds: centralResult.loadSeconds,
      cpuSeconds: centralResult.cpuSeconds,
      epochs: centralResult.epochs,
    },
    federated: { weights: fedRun.exported, finalCommit: fedRun.finalCommit ?? null, wallSeconds: fedRun.seconds, repos: path.join(work, 'repos') },
    test: metrics,
    predictions,
    examples: await examplesFor(path.join(data, 'test'), test.samples, predictions, say),
    timings,
  };

  const markdown = renderReportMarkdown(report);
  const json = JSON.stringify(report, null, 2) + '\n';
  const files: string[] = [];
  for (const dir of [path.dirname(fedRun.exported), work]) {
    for (const [name, text] of [['comparison.md', markdown], ['comparison.json', json]] as const) {
      const file = path.join(dir, name);
      await writeFile(file, text);
      files.push(file);
    }
  }
  files.push(...await writeHtmlReports({ cli: s.cli, repos: path.join(work, 'repos'), comparison: path.join(work, 'comparison.json'), dirs: [work, path.dirname(fedRun.exported)], say }));
  say('');
  say(renderReportSummary(report));
  say('');
  say(`[experiment] done in ${elapsed(started)}; report written to:`);
  for (const file of files) say(`  ${file}`);
  return { report, files };
}
