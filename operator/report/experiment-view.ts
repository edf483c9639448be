/**
 * The experiment's comparison (comparison.json, written by `fedgit experiment`) as the report
 * shows it. The operator does not import the experiment: the file is read as plain JSON and
 * every number is taken only if it is one, so a missing or renamed field leaves a gap, not a crash.
 */
import { escapeUntrusted } from '../text/untrusted.js';
import { aspectsScoreOf, blandAltman, rocCurve, type BlandAltman, type RocCurve } from './agreement.js';

export type ClassStats = { readonly precision: number | null; readonly recall: number | null; readonly f1: number | null; readonly support: number | null };
export type RegionStats = { readonly sensitivity: number | null; readonly specificity: number | null; readonly auc: number | null; readonly positives: number | null };

export type ModelResult = {
  readonly name: string;
  readonly n: number | null;
  readonly loss: number | null;
  readonly accuracy: number | null;
  readonly macroAuc: number | null;
  readonly classes: Readonly<Record<'0' | '1', ClassStats>>;
  readonly regions: Readonly<Record<string, RegionStats>>;
  readonly aspects: { readonly meanDifference: number | null; readonly meanAbsoluteDifference: number | null; readonly withinOnePercent: number | null; readonly dichotomyAccuracy: number | null };
  /**
   * Region decisions pooled over the test set, rebuilt from each class's recall and support
   * (recall of class 1 = TP / positives, recall of class 0 = TN / negatives); null when absent.
   */
  readonly confusion: { readonly tp: number; readonly fn: number; readonly tn: number; readonly fp: number } | null;
};

export type ExperimentView = {
  readonly createdAt: string | null;
  readonly rounds: number | null;
  readonly epochsPerRound: number | null;
  readonly engines: ReadonlyArray<readonly [string, string]>;
  readonly trainVolumes: ReadonlyArray<readonly [string, number]>;
  readonly testVolumes: number | null;
  readonly models: readonly ModelResult[];
  readonly regions: readonly string[];
  /** Central training's validation curve, per epoch. */
  readonly centralEpochs: ReadonlyArray<{ readonly epoch: number; readonly validationLoss: number | null; readonly validationMacroAuc: number | null }>;
  readonly wallSeconds: ReadonlyArray<readonly [string, number]>;
  /** From per-scan predictions, when comparison.json holds them. */
  readonly roc: ReadonlyArray<{ readonly model: string } & RocCurve>;
  readonly agreement: ReadonlyArray<{ readonly model: string } & BlandAltman>;
  readonly scans: number | null;
  /** Test scans cut through both ASPECTS levels, with what each model said about each region. */
  readonly examples: readonly ExampleView[];
};

export type ExampleView = {
  readonly id: string;
  readonly hemisphere: string;
  readonly regions: readonly string[];
  readonly truth: readonly boolean[];
  /** Per model name: probability per region. */
  readonly probabilities: ReadonlyArray<readonly [string, readonly number[]]>;
  readonly threshold: number;
  /** Images as experiment/example-slices.ts writes them (base64, checked to fit width × height). */
  readonly slices: ReadonlyArray<{ readonly zMm: number; readonly width: number; readonly height: number; readonly image: string; readonly regions: string }>;
};

const MAX_EXAMPLES = 8;
const MAX_SLICE_SIDE = 512;

function fromExamples(examples: Json, predictions: Json): ExampleView[] {
  const regions = at(predictions, 'regions');
  const scans = at(predictions, 'scans');
  if (!Array.isArray(examples) || !Array.isArray(regions) || !Array.isArray(scans)) return [];
  const k = regions.length;
  const threshold = num(predictions, 'threshold') ?? 0.5;
  const out: ExampleView[] = [];
  for (const example of examples.slice(0, MAX_EXAMPLES)) {
    const id = at(example, 'id');
    const index = scans.findIndex((scan) => at(scan, 'id') === id);
    const truth = index >= 0 ? at(scans[index], 'labels') : undefined;
    if (typeof id !== 'string' || !isProbabilityRow(truth, k)) continue;
    const probabilities = entriesOf(at(predictions, 'probabilities')).flatMap(([key, rows]) => {
      const row = Array.isArray(rows) ? rows[index] : undefined;
      return isProbabilityRow(row, k) ? [[MODEL_NAMES[key] ?? label(key), row] as const] : [];
    });
    const slices = (Array.isArray(at(example, 'slices')) ? at(example, 'slices') as Json[] : []).flatMap((slice) => {
      const width = num(slice, 'width'), height = num(slice, 'height'), zMm = num(slice, 'zMm');
      const image = at(slice, 'image'), labels = at(slice, 'regions');
      if (width === null || height === null || zMm === null || typeof image !== 'string' || typeof labels !== 'string') return [];
      if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > MAX_SLICE_SIDE || height > MAX_SLICE_SIDE) return [];
      const size = width * height;
      const labelBytes = Buffer.from(labels, 'base64');
      if (Buffer.from(image, 'base64').length !== size || labelBytes.length !== size || labelBytes.some((v) => v > k)) return [];
      return [{ zMm, width, height, image, regions: labels }];
    });
    const hemisphere = at(example, 'hemisphere');
    if (slices.length) out.push({ id: label(id), hemisphere: hemisphere === 'L' || hemisphere === 'R' ? hemisphere : '?', regions: regions.map((r) => label(String(r))), truth: truth.map((v) => v === 1), probabilities, threshold, slices });
  }
  return out;
}

const MODEL_NAMES: Record<string, string> = { initial: 'round 0', central: 'central', federated: 'federated' };
/** Most scans read from comparison.json: a bound on what a hand-edited file can make the report do. */
const MAX_SCANS = 100_000;

const isProbabilityRow = (row: Json, k: number): row is number[] => Array.isArray(row) && row.length === k && row.every((v) => typeof v === 'number' && Number.isFinite(v));

/**
 * ROC curves (all region decisions pooled) and Bland–Altman agreement of the ASPECTS score, from
 * `predictions` ({ regions, threshold, scans: [{ labels }], probabilities: { model: [[p per region]] } });
 * a model whose rows do not line up with the scans is left out.
 */
function fromPredictions(predictions: Json): Pick<ExperimentView, 'roc' | 'agreement' | 'scans'> {
  const regions = at(predictions, 'regions');
  const scans = at(predictions, 'scans');
  const k = Array.isArray(regions) ? regions.length : 0;
  if (k === 0 || !Array.isArray(scans) || scans.length === 0 || scans.length > MAX_SCANS) return { roc: [], agreement: [], scans: null };
  const labels = scans.map((scan) => at(scan, 'labels'));
  if (!labels.every((row) => isProbabilityRow(row, k) && row.every((v) => v === 0 || v === 1))) return { roc: [], agreement: [], scans: null };
  const truth = labels as number[][];
  const threshold = num(predictions, 'threshold') ?? 0.5;
  const trueScores = truth.map((row) => aspectsScoreOf(row.map((v) => v === 1)));
  const roc: Array<{ model: string } & RocCurve> = [];
  const agreement: Array<{ model: string } & BlandAltman> = [];
  for (const [key, rows] of entriesOf(at(predictions, 'probabilities'))) {
    if (!Array.isArray(rows) || rows.length !== truth.length || !rows.every((row) => isProbabilityRow(row, k))) continue;
    const model = MODEL_NAMES[key] ?? label(key);
    const probabilities = rows as number[][];
    roc.push({ model, ...rocCurve(probabilities.flat(), truth.flat()) });
    const agreed = blandAltman(trueScores, probabilities.map((row) => aspectsScoreOf(row.map((p) => p >= threshold))));
    if (agreed) agreement.push({ model, ...agreed });
  }
  return { roc, agreement, scans: truth.length };
}

type Json = unknown;
const at = (value: Json, ...path: string[]): Json => {
  let v: Json = value;
  for (const k of path) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Json>)[k] : undefined;
  return v;
};
const num = (value: Json, ...path: string[]): number | null => {
  const v = at(value, ...path);
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
};
const entriesOf = (value: Json): Array<[string, Json]> => (value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value as Record<string, Json>) : []);
const label = (text: string) => escapeUntrusted(text, 80);

function modelResult(name: string, m: Json): ModelResult {
  const classes = { '0': classStats(at(m, 'classes', '0')), '1': classStats(at(m, 'classes', '1')) };
  const regions: Record<string, RegionStats> = {};
  for (const [region, r] of entriesOf(at(m, 'regions')).slice(0, 64)) {
    regions[label(region)] = { sensitivity: num(r, 'sensitivity'), specificity: num(r, 'specificity'), auc: num(r, 'auc'), positives: num(r, 'positives') };
  }
  const { '0': c0, '1': c1 } = classes;
  const confusion = c0.recall !== null && c0.support !== null && c1.recall !== null && c1.support !== null
    ? (() => {
      const tp = Math.round(c1.recall! * c1.support!), tn = Math.round(c0.recall! * c0.support!);
      return { tp, fn: c1.support! - tp, tn, fp: c0.support! - tn };
    })()
    : null;
  return {
    name,
    n: num(m, 'n'),
    loss: num(m, 'loss'),
    accuracy: num(m, 'accuracy'),
    macroAuc: num(m, 'macroAuc'),
    classes,
    regions,
    aspects: { meanDifference: num(m, 'aspects', 'meanDifference'), meanAbsoluteDifference: num(m, 'aspects', 'meanAbsoluteDifference'), withinOnePercent: num(m, 'aspects', 'withinOnePercent'), dichotomyAccuracy: num(m, 'aspects', 'dichotomyAccuracy') },
    confusion,
  };
}

function classStats(c: Json): ClassStats {
  return { precision: num(c, 'precision'), recall: num(c, 'recall'), f1: num(c, 'f1'), support: num(c, 'support') };
}

/** The view of a parsed comparison.json; null when it is not one (`kind` fedgit-experiment/…). */
export function parseExperimentView(report: Json): ExperimentView | null {
  const kind = at(report, 'kind');
  if (typeof kind !== 'string' || !kind.startsWith('fedgit-experiment/')) return null;
  const test = at(report, 'test');
  const models = ([['round 0', 'initial'], ['central', 'central'], ['federated', 'federated']] as const)
    .filter(([, key]) => at(test, key) !== undefined)
    .map(([name, key]) => modelResult(name, at(test, key)));
  const regions = [...new Set(models.flatMap((m) => Object.keys(m.regions)))];
  const epochs = at(report, 'central', 'epochs');
  const createdAt = at(report, 'createdAt');
  return {
    createdAt: typeof createdAt === 'string' ? label(createdAt) : null,
    rounds: num(report, 'settings', 'rounds'),
    epochsPerRound: num(report, 'settings', 'epochsPerRound'),
    engines: entriesOf(at(report, 'settings', 'engines')).slice(0, 64).map(([e, k]) => [label(e), label(String(k))] as const),
    trainVolumes: entriesOf(at(report, 'settings', 'volumes', 'train')).slice(0, 64).flatMap(([e, n]) => (typeof n === 'number' ? [[label(e), n] as const] : [])),
    testVolumes: num(report, 'settings', 'volumes', 'test'),
    models,
    regions,
    centralEpochs: (Array.isArray(epochs) ? epochs : []).slice(0, 10_000).map((e: Json, i) => ({ epoch: num(e, 'epoch') ?? i + 1, validationLoss: num(e, 'validationLoss'), validationMacroAuc: num(e, 'validationMacroAuc') })),
    ...fromPredictions(at(report, 'predictions')),
    examples: fromExamples(at(report, 'examples'), at(report, 'predictions')),
    wallSeconds: entriesOf(at(report, 'timings')).slice(0, 32).flatMap(([k, v]) => (typeof v === 'number' && Number.isFinite(v) ? [[label(k), v] as const] : [])),
  };
}
