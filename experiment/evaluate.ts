/**
 * `fedgit evaluate --weights <commit|tag|file> --data DIR`: the experiment's
 * report (per class precision/recall/F1, per region sensitivity/specificity/
 * AUC, ASPECTS agreement) for any weights on any labelled folder.
 *
 * read (weights, their plan) → decide (which app and options; do the weights
 * fit?) → evaluate (the app's own public evaluation, in evaluateFolder) → render.
 */
import { stat, mkdir, writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppRegistry, Metrics, Tensors } from '../operator/contracts.js';
import { parseSafetensors } from '../operator/checkpoint/safetensors.js';
import { DataInvalid } from '../operator/errors.js';
import { WEIGHTS_FILE, TRAILER, trailer, shortId } from '../operator/git/names.js';
import { whereFrom, openForReading, loadPlan } from '../operator/commands/locate.js';
import { readPlanFile } from '../operator/plan/plan.js';
import type { Registries } from '../operator/runtime/registries.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import { renderMetricsTable } from '../edge-app/metrics/index.js';
import { classTable, comparisonSections, headline, regionTable } from './report.js';
import { ExperimentUsage, WeightsMismatch } from './errors.js';
import type { Say } from './cohort.js';

export type EvaluateSettings = {
  /** Safetensors files, or global-repository commits/tags/branches; one column each. */
  readonly weights: readonly string[];
  readonly data: string;
  readonly repos?: string;
  readonly config?: string;
  /** A plan whose app options the weights were trained with (when they do not name a readable plan). */
  readonly plan?: string;
  readonly out?: string;
  readonly say?: Say;
};

export type EvaluatedSet = {
  readonly name: string;
  /** Where the weights came from: a file path, or `<commit> in <global repository>`. */
  readonly source: string;
  readonly app: string;
  readonly architecture: string;
  /** Where the app options came from. */
  readonly optionsFrom: string;
  readonly volumes: number;
  readonly leftOut: readonly { readonly id: string; readonly message: string }[];
  readonly metrics: Metrics;
};

export type EvaluationReport = { readonly kind: 'fedgit-evaluation/v1'; readonly createdAt: string; readonly data: string; readonly sets: readonly EvaluatedSet[] };

type LoadedWeights = { readonly tensors: Tensors; readonly metadata: Readonly<Record<string, string>>; readonly source: string; readonly planId?: string };

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** A safetensors file, or a commit/tag/branch of the global repository. */
async function readWeightsSpec(spec: string, s: EvaluateSettings): Promise<LoadedWeights> {
  if (await isFile(spec)) {
    const checkpoint = parseSafetensors(await readFile(spec), spec);
    const planId = checkpoint.metadata['fedgit.plan'];
    return { ...checkpoint, source: path.resolve(spec), ...(planId ? { planId } : {}) };
  }
  if (/\.safetensors$/i.test(spec) || spec.includes(path.sep)) throw new ExperimentUsage(`evaluate: no weights file ${spec}`);
  const where = await whereFrom({ ...(s.repos ? { repos: s.repos } : {}), ...(s.config ? { config: s.config } : {}) });
  const global = await openForReading(where, where.locate([]).global, 'the global repository');
  const commit = await global.resolve(spec);
  const planId = trailer((await global.readCommit(commit)).trailers, TRAILER.plan);
  const checkpoint = parseSafetensors(await global.readFile(commit, WEIGHTS_FILE), `${WEIGHTS_FILE} of ${shortId(commit)} in ${global.gitdir}`);
  return { ...checkpoint, source: `${commit} in ${global.gitdir}`, ...(planId ? { planId } : {}) };
}

type AppChoice = { readonly app: string; readonly options: unknown; readonly from: string };

/**
 * Which app and options the weights are evaluated with: --plan, else the plan the weights name
 * (read from the plan repository), else the app whose default options give their architecture.
 */
async function chooseApp(w: LoadedWeights, s: EvaluateSettings, registries: Registries): Promise<AppChoice> {
  if (s.plan) {
    const { plan } = await readPlanFile(s.plan, { apps: registries.apps, strategies: registries.strategies });
    return { app: plan.app.id, options: plan.app.options, from: s.plan };
  }
  if (w.planId) {
    try {
      const where = await whereFrom({ ...(s.repos ? { repos: s.repos } : {}), ...(s.config ? { config: s.config } : {}) });
      const committed = await loadPlan(where, registries, w.planId);
      return { app: committed.plan.app.id, options: committed.plan.app.options, from: `plan ${shortId(committed.id)}` };
    } catch {
      // the plan repository is elsewhere or gone: fall back to the architecture
    }
  }
  const architecture = w.metadata['fedgit.architecture'];
  if (!architecture) throw new WeightsMismatch(`${w.source}: the weights do not say their architecture (no fedgit.architecture in the safetensors metadata); give --plan FILE`, { source: w.source });
  for (const id of registries.apps.ids()) {
    const options = registries.apps.optionsSchema(id).parse({});
    if (registries.apps.architecture(id, options) === architecture) return { app: id, options, from: `defaults of app ${id}` };
  }
  throw new WeightsMismatch(`${w.source}: architecture ${architecture} is not one this fedgit evaluates (${registries.apps.ids().map((id) => registries.apps.architecture(id, registries.apps.optionsSchema(id).parse({}))).join(', ')})`, { source: w.source, architecture });
}

/** Throws WeightsMismatch unless the weights are exactly the app's tensors (names and shapes) and architecture. Pure. */
export function checkWeightsFit(w: Pick<LoadedWeights, 'tensors' | 'metadata' | 'source'>, choice: AppChoice, registry: AppRegistry): string {
  const architecture = registry.architecture(choice.app, choice.options);
  const stated = w.metadata['fedgit.architecture'];
  if (stated !== undefined && stated !== architecture) {
    throw new WeightsMismatch(`${w.source}: the weights are ${stated}, app ${choice.app} (${choice.from}) is ${architecture}`, { source: w.source, stated, architecture });
  }
  const spec = registry.tensorSpec(choice.app, choice.options);
  const shape = (s: readonly number[]) => `[${s.join(', ')}]`;
  for (const t of spec) {
    const have = w.tensors.get(t.name);
    if (!have) throw new WeightsMismatch(`${w.source}: no tensor ${t.name}, which ${architecture} (${choice.from}) needs`, { source: w.source, tensor: t.name });
    if (shape(have.shape) !== shape(t.shape)) throw new WeightsMismatch(`${w.source}: tensor ${t.name} is ${shape(have.shape)}, ${architecture} (${choice.from}) needs ${shape(t.shape)}`, { source: w.source, tensor: t.name });
  }
  const extra = [...w.tensors.keys()].filter((name) => !spec.some((t) => t.name === name));
  if (extra.length > 0) throw new WeightsMismatch(`${w.source}: tensor ${extra[0]} is not part of ${architecture}`, { source: w.source, tensor: extra[0] });
  return architecture;
}

/**
 * The one place that knows how each app evaluates a labelled folder (the apps' public evaluation
 * functions). Adapt here when an app's loading or evaluation changes.
 */
export async function evaluateFolder(architecture: string, options: unknown, weights: Tensors, dataDir: string, say: Say): Promise<{ metrics: Metrics; volumes: number; leftOut: { id: string; message: string }[] }> {
  const [{ REGION_ARCHITECTURE }, { ASPECTS_ARCHITECTURE }] = await Promise.all([import('../edge-app/aspects/region-spec.js'), import('../edge-app/aspects/spec.js')]);
  await selectBackend();
  if (architecture === REGION_ARCHITECTURE) {
    const [{ loadRegionCohort }, { atlasSource, evaluateRegionSamples }] = await Promise.all([import('../edge-app/preprocess/region-cohort.js'), import('../edge-app/aspects/region-app.js')]);
    const o = options as import('../edge-app/aspects/region-options.js').RegionOptions;
    const cohort = await loadRegionCohort(dataDir, {
      atlas: atlasSource(dataDir, o), mode: o.registration,
      onProgress: (done, total) => { if (done === total || done % 10 === 0) say(`[evaluate] ${done}/${total} volumes registered and measured`); },
      onRefused: (_id, message) => say(`[evaluate] left out: ${message}`),
    });
    return { metrics: evaluateRegionSamples(weights, cohort.samples, o.hidden), volumes: cohort.count, leftOut: cohort.refused.map((r) => ({ ...r })) };
  }
  if (architecture === ASPECTS_ARCHITECTURE) {
    const [{ loadCohort }, { evaluateSamples }] = await Promise.all([import('../edge-app/cohort/index.js'), import('../edge-app/aspects/app.js')]);
    const { grid } = options as import('../edge-app/aspects/options.js').AspectsOptions;
    const cohort = await loadCohort(dataDir, { grid });
    return { metrics: evaluateSamples(weights, cohort.samples, grid), volumes: cohort.count, leftOut: [] };
  }
  throw new WeightsMismatch(`fedgit evaluate does not know how to evaluate ${architecture}`, { architecture });
}

async function checkDataFolder(dir: string): Promise<void> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    throw new DataInvalid(`${dir}: no such folder`, { file: dir, reason: 'missing' });
  }
  if (!isDir) throw new DataInvalid(`${dir}: not a folder`, { file: dir, reason: 'kind' });
  if (!(await isFile(path.join(dir, 'labels.csv')))) throw new DataInvalid(`${dir}: no labels.csv (one row per volume: file, hemisphere, one 0/1 column per ASPECTS region)`, { file: path.join(dir, 'labels.csv'), reason: 'labels' });
}

export async function runEvaluate(s: EvaluateSettings, registries: Registries): Promise<{ report: EvaluationReport; files: string[] }> {
  const say = s.say ?? ((line: string) => console.log(line));
  if (s.weights.length === 0) throw new ExperimentUsage('evaluate: which weights? give --weights FILE|COMMIT|TAG (see fedgit evaluate --help)');
  const data = path.resolve(s.data);
  await checkDataFolder(data);
  // Everything about the weights is read and checked before any volume is.
  const chosen: Array<{ spec: string; w: LoadedWeights; choice: AppChoice; architecture: string }> = [];
  for (const spec of s.weights) {
    const w = await readWeightsSpec(spec, s);
    const choice = await chooseApp(w, s, registries);
    chosen.push({ spec, w, choice, architecture: checkWeightsFit(w, choice, registries.apps) });
  }
  const sets: EvaluatedSet[] = [];
  for (const { spec, w, choice, architecture } of chosen) {
    say(`[evaluate] ${spec}: ${architecture} (app ${choice.app}, options from ${choice.from}) on ${data}`);
    const started = Date.now();
    const r = await evaluateFolder(architecture, choice.options, w.tensors, data, say);
    say(`[evaluate] ${spec}: ${r.volumes} volumes in ${((Date.now() - started) / 1000).toFixed(1)} s${r.leftOut.length ? `, ${r.leftOut.length} left out` : ''}`);
    sets.push({ name: spec, source: w.source, app: choice.app, architecture, optionsFrom: choice.from, volumes: r.volumes, leftOut: r.leftOut, metrics: r.metrics });
  }
  const report: EvaluationReport = { kind: 'fedgit-evaluation/v1', createdAt: new Date().toISOString(), data, sets };
  say('');
  say(renderEvaluationSummary(report));
  const files: string[] = [];
  if (s.out) {
    await mkdir(s.out, { recursive: true });
    for (const [name, text] of [['evaluation.md', renderEvaluationMarkdown(report)], ['evaluation.json', JSON.stringify(report, null, 2) + '\n']] as const) {
      const file = path.resolve(s.out, name);
      await writeFile(file, text);
      files.push(file);
    }
    say(`[evaluate] report written to ${files.join(' and ')}`);
  }
  return { report, files };
}

const pairs = (r: EvaluationReport): Array<readonly [string, Metrics]> => r.sets.map((set) => [set.name, set.metrics] as const);

/** The tables the experiment prints, one column group per weights. Pure. */
export function renderEvaluationSummary(r: EvaluationReport): string {
  const sets = pairs(r);
  return [headline(sets), '', classTable(sets), '', regionTable(sets)].join('\n');
}

export function renderEvaluationMarkdown(r: EvaluationReport): string {
  const sets = pairs(r);
  return [
    '# ASPECTS evaluation (fedgit evaluate)',
    '',
    `${r.createdAt}. Data ${r.data}.`,
    '',
    ...r.sets.map((set) => `- \`${set.name}\`: ${set.architecture} from ${set.source} (app ${set.app}, options from ${set.optionsFrom}); ${set.volumes} volumes` +
      (set.leftOut.length ? `; left out: ${set.leftOut.map((l) => l.message).join('; ')}` : '')),
    '',
    ...comparisonSections('Headline', sets, sets),
    '',
    '## Everything',
    '',
    renderMetricsTable(sets).trimEnd(),
    '',
  ].join('\n');
}
