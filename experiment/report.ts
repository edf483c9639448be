/**
 * The experiment's result: central vs federated on the held-out test set,
 * as Markdown (for people) and JSON (for machines). Rendering is pure.
 */
import type { Metrics, MetricValue } from '../operator/contracts.js';
import { METRIC_REGIONS, renderMetricsTable } from '../edge-app/metrics/index.js';
import type { ExperimentPredictions } from './predictions.js';
import type { ExampleScan } from './example-slices.js';

export type ArmTiming = { readonly wallSeconds: number; readonly detail?: string };

export type ExperimentReport = {
  readonly kind: 'fedgit-experiment/v1';
  readonly createdAt: string;
  readonly settings: {
    readonly plan: string;
    readonly rounds: number;
    readonly epochsPerRound: number;
    readonly totalEpochs: number;
    readonly hidden: number;
    readonly batchSize: number;
    readonly learningRate: number;
    readonly validationFraction: number;
    readonly seed: number;
    readonly engines: Record<string, string>;
    readonly data: string;
    readonly matrix: number | null;
    readonly volumes: { readonly train: Record<string, number>; readonly test: number };
  };
  readonly central: { readonly weights: string; readonly trainVolumes: number; readonly validationVolumes: number; readonly trainSeconds: number; readonly loadSeconds: number; readonly cpuSeconds: number; readonly epochs: unknown[] };
  readonly federated: { readonly weights: string; readonly finalCommit: string | null; readonly wallSeconds: number; readonly repos: string };
  readonly test: { readonly initial: Metrics; readonly central: Metrics; readonly federated: Metrics };
  /** Per-scan probabilities of the three models on the test set (experiment/predictions.ts). */
  readonly predictions?: ExperimentPredictions;
  /** A few test scans cut through both ASPECTS levels, for the HTML report (experiment/example-slices.ts). */
  readonly examples?: readonly ExampleScan[];
  readonly timings: Record<string, number>;
};

const num = (m: Metrics, ...path: string[]): number | null => {
  let at: MetricValue | undefined = m;
  for (const k of path) at = at !== null && typeof at === 'object' && !Array.isArray(at) ? (at as Record<string, MetricValue>)[k] : undefined;
  return typeof at === 'number' && Number.isFinite(at) ? at : null;
};

const f = (v: number | null, digits = 3): string => (v === null ? '—' : v.toFixed(digits));
const pct = (v: number | null): string => (v === null ? '—' : `${(v * 100).toFixed(1)} %`);
const secs = (s: number): string => (s >= 90 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`);

/** The per-class table of a classification report (class 0 and 1 pooled over regions). */
export function classTable(sets: ReadonlyArray<readonly [string, Metrics]>): string {
  const lines = ['| model | class | precision | recall | F1 | support |', '|---|---|---:|---:|---:|---:|'];
  for (const [name, m] of sets) {
    for (const c of ['0', '1']) {
      lines.push(`| ${name} | ${c} (${c === '1' ? 'affected' : 'unaffected'}) | ${f(num(m, 'classes', c, 'precision'))} | ${f(num(m, 'classes', c, 'recall'))} | ${f(num(m, 'classes', c, 'f1'))} | ${num(m, 'classes', c, 'support') ?? '—'} |`);
    }
  }
  return lines.join('\n');
}

export function regionTable(sets: ReadonlyArray<readonly [string, Metrics]>): string {
  const head = `| region | ${sets.map(([n]) => `${n} sens | ${n} spec | ${n} AUC`).join(' | ')} | positives |`;
  const rule = `|---|${sets.map(() => '---:|---:|---:').join('|')}|---:|`;
  const body = METRIC_REGIONS.map((r) => `| ${r} | ${sets.map(([, m]) => [f(num(m, 'regions', r, 'sensitivity')), f(num(m, 'regions', r, 'specificity')), f(num(m, 'regions', r, 'auc'))].join(' | ')).join(' | ')} | ${num(sets[0]![1], 'regions', r, 'positives') ?? '—'} |`);
  return [head, rule, ...body].join('\n');
}

export function headline(sets: ReadonlyArray<readonly [string, Metrics]>): string {
  const lines = ['| | test loss | macro AUC | F1 class 1 | F1 class 0 | ASPECTS mean diff | ASPECTS within ±1 | ASPECTS ≥ 6 accuracy |', '|---|---:|---:|---:|---:|---:|---:|---:|'];
  for (const [name, m] of sets) {
    lines.push(`| ${name} | ${f(num(m, 'loss'), 4)} | ${f(num(m, 'macroAuc'))} | ${f(num(m, 'classes', '1', 'f1'))} | ${f(num(m, 'classes', '0', 'f1'))} | ${f(num(m, 'aspects', 'meanDifference'), 2)} | ${num(m, 'aspects', 'withinOnePercent') === null ? '—' : `${num(m, 'aspects', 'withinOnePercent')!.toFixed(1)} %`} | ${pct(num(m, 'aspects', 'dichotomyAccuracy'))} |`);
  }
  return lines.join('\n');
}

/** One-paragraph verdict: how far federated is from central on the two headline numbers. */
/** The headline, per-class and per-region sections of a comparison, as Markdown lines. */
export function comparisonSections(headlineTitle: string, headlineSets: ReadonlyArray<readonly [string, Metrics]>, sets: ReadonlyArray<readonly [string, Metrics]>): string[] {
  return [
    `## ${headlineTitle}`, '', headline(headlineSets), '',
    '## Per class (pooled over the 10 regions)', '', classTable(sets), '',
    '## Per region', '', regionTable(sets),
  ];
}

export function verdict(r: ExperimentReport): string {
  const c = r.test.central, fd = r.test.federated, i = r.test.initial;
  const dAuc = (num(fd, 'macroAuc') ?? NaN) - (num(c, 'macroAuc') ?? NaN);
  const dF1 = (num(fd, 'classes', '1', 'f1') ?? NaN) - (num(c, 'classes', '1', 'f1') ?? NaN);
  const pts = (d: number) => (Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${(d * 100).toFixed(1)} points` : 'n/a');
  return `Federated vs central on ${num(c, 'n') ?? '?'} test volumes: macro AUC ${f(num(fd, 'macroAuc'))} vs ${f(num(c, 'macroAuc'))} (${pts(dAuc)}), ` +
    `F1 of class 1 ${f(num(fd, 'classes', '1', 'f1'))} vs ${f(num(c, 'classes', '1', 'f1'))} (${pts(dF1)}); ` +
    `the round-0 model had macro AUC ${f(num(i, 'macroAuc'))}, test loss ${f(num(i, 'loss'), 4)}.` +
    (Math.max(num(c, 'macroAuc') ?? 0, num(fd, 'macroAuc') ?? 0) < CHANCE_MARGIN
      ? ` Neither model ranks affected regions much better than chance (macro AUC < ${CHANCE_MARGIN}): they learnt the base rates, not the lesions.`
      : '');
}

/** Below this macro AUC a model is reported as not better than chance. */
export const CHANCE_MARGIN = 0.6;

export function renderReportMarkdown(r: ExperimentReport): string {
  const s = r.settings;
  const sets: Array<readonly [string, Metrics]> = [['central', r.test.central], ['federated', r.test.federated]];
  const withInitial: Array<readonly [string, Metrics]> = [['round 0 (initial)', r.test.initial], ...sets];
  const engines = Object.entries(s.engines).map(([e, k]) => `${e}: ${k}`).join(', ');
  return [
    `# ASPECTS: central vs federated (fedgit experiment)`,
    '',
    `${r.createdAt}. Plan \`${s.plan}\`: ${s.rounds} rounds × ${s.epochsPerRound} epochs per round = ${s.totalEpochs} epochs; ` +
      `${s.hidden} hidden units, batch ${s.batchSize}, learning rate ${s.learningRate}, ` +
      `validation fraction ${s.validationFraction}, seed ${s.seed}. Engines: ${engines}.`,
    `Data ${s.data}${s.matrix ? ` (synthetic, ${s.matrix}×${s.matrix} matrix)` : ''}: ` +
      `${Object.entries(s.volumes.train).map(([e, n]) => `${e} ${n}`).join(', ')} volumes for training; ${s.volumes.test} test volumes. ` +
      `Central trains on the union of the edges' training splits (${r.central.trainVolumes} volumes) from the same round-0 weights.`,
    '',
    verdict(r),
    '',
    ...comparisonSections('Headline (test set)', withInitial, sets),
    '',
    '## Wall time',
    '',
    '| | wall time | note |',
    '|---|---:|---|',
    `| central training | ${secs(r.central.trainSeconds)} | ${r.central.trainVolumes} volumes, one process (loading ${secs(r.central.loadSeconds)} more; CPU ${secs(r.central.cpuSeconds)}) |`,
    `| federated training | ${secs(r.federated.wallSeconds)} | \`fedgit run\`: 2 edges in parallel processes + aggregator, git commits, per-round evaluation, data loading |`,
    ...Object.entries(r.timings).map(([k, v]) => `| ${k} | ${secs(v)} | |`),
    '',
    '## Everything',
    '',
    renderMetricsTable(withInitial).trimEnd(),
    '',
    `Central weights: \`${r.central.weights}\`  `,
    `Federated weights: \`${r.federated.weights}\`${r.federated.finalCommit ? ` (global commit ${r.federated.finalCommit} in ${r.federated.repos})` : ''}`,
    '',
  ].join('\n');
}

/** The short version printed at the end of the run. */
export function renderReportSummary(r: ExperimentReport): string {
  const sets: Array<readonly [string, Metrics]> = [['round 0 (initial)', r.test.initial], ['central', r.test.central], ['federated', r.test.federated]];
  return [
    headline(sets),
    '',
    classTable(sets.slice(1)),
    '',
    regionTable(sets.slice(1)),
    '',
    verdict(r),
    `Wall time: central training ${secs(r.central.trainSeconds)}, federated training ${secs(r.federated.wallSeconds)}${r.timings.total !== undefined ? `, whole job ${secs(r.timings.total)}` : ''}.`,
  ].join('\n');
}
