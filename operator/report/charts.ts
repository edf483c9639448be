/**
 * Chart.js configurations for the report, built here (type-checked) and embedded as JSON; the
 * page's script only hands each to `new Chart`. Labels are drawn on a canvas, never parsed as HTML.
 */
import type { ReportModel } from './model.js';
import type { ExperimentView, ModelResult } from './experiment-view.js';

export type ChartSpec = { readonly id: string; readonly title: string; readonly config: Record<string, unknown> };

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const colourOf = (index: number): string => PALETTE[index % PALETTE.length]!;

const baseOptions = (x: string, y: string, extra: Record<string, unknown> = {}) => ({
  animation: false,
  responsive: true,
  maintainAspectRatio: false,
  interaction: { mode: 'nearest', intersect: false },
  plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
  scales: { x: { title: { display: true, text: x } }, y: { title: { display: true, text: y } } },
  ...extra,
});

/** Values a chart plots, for checking that none is empty. */
export function pointCount(spec: ChartSpec): number {
  const data = spec.config.data as { datasets: Array<{ data: unknown[] }> };
  return data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null && v !== undefined).length, 0);
}

export function federationCharts(model: ReportModel): ChartSpec[] {
  return [...metricCharts(model), pushDelayChart(model), mergeWeightChart(model)].filter((spec): spec is ChartSpec => spec !== null);
}

/** One line chart per metric: each edge's global-model (solid) and local-model (dashed) curve. */
function metricCharts(model: ReportModel): ChartSpec[] {
  const edgeIndex = new Map(model.plan.edges.map((e, i) => [e, i]));
  return model.metricNames.flatMap((metric, m) => {
    const series = model.curves[metric] ?? [];
    if (series.length === 0) return [];
    return [{
      id: `chart-metric-${m}`,
      title: metric,
      config: {
        type: 'line',
        data: {
          datasets: series.map((s) => ({
            label: `${s.edge} ${s.kind === 'global' ? 'global model' : 'local model'}`,
            data: s.points.map(([x, y]) => ({ x, y })),
            borderColor: colourOf(edgeIndex.get(s.edge) ?? 0),
            backgroundColor: colourOf(edgeIndex.get(s.edge) ?? 0),
            borderDash: s.kind === 'local' ? [6, 4] : [],
            pointRadius: 3,
            tension: 0,
          })),
        },
        options: baseOptions('round', metric, { scales: { x: { type: 'linear', title: { display: true, text: 'round' }, ticks: { precision: 0 } }, y: { title: { display: true, text: metric } } } }),
      },
    }];
  });
}

/** Seconds from each round's opening to each edge's push; null when no round has opened. */
function pushDelayChart(model: ReportModel): ChartSpec | null {
  const opened = model.timeline;
  if (opened.length === 0) return null;
  return {
    id: 'chart-push-delay',
    title: 'seconds from round start to push',
    config: {
      type: 'bar',
      data: {
        labels: opened.map((t) => `round ${t.round}`),
        datasets: model.plan.edges.map((edge, i) => ({
          label: edge,
          data: opened.map((t) => t.cells.find((c) => c.edge === edge)?.delaySeconds ?? null),
          backgroundColor: colourOf(i),
        })),
      },
      options: baseOptions('round', 'seconds'),
    },
  };
}

/** Each merge's weights, stacked per edge (plan edges first, then any other name a merge records); null before the first merge. */
function mergeWeightChart(model: ReportModel): ChartSpec | null {
  const merges = model.rounds.filter((r) => r.round > 0);
  if (merges.length === 0) return null;
  const edges = [...new Set([...model.plan.edges, ...merges.flatMap((r) => r.merged.map((m) => m.edge))])];
  return {
    id: 'chart-merge-weights',
    title: 'merge weight per edge',
    config: {
      type: 'bar',
      data: {
        labels: merges.map((r) => `round ${r.round}`),
        datasets: edges.map((edge, i) => ({
          label: edge,
          data: merges.map((r) => r.merged.find((m) => m.edge === edge)?.weight ?? 0),
          backgroundColor: colourOf(i),
        })),
      },
      options: baseOptions('round', 'weight', { scales: { x: { stacked: true }, y: { stacked: true, min: 0, max: 1, title: { display: true, text: 'weight' } } } }),
    },
  };
}

/** Dataset-size-weighted mean of one metric of the global model over the edges, per round. */
function meanGlobalCurve(model: ReportModel, metric: string): Array<[number, number]> {
  const byRound = new Map<number, number[]>();
  for (const s of model.curves[metric] ?? []) {
    if (s.kind !== 'global') continue;
    for (const [x, y] of s.points) byRound.set(x, [...(byRound.get(x) ?? []), y]);
  }
  return [...byRound].sort(([a], [b]) => a - b).map(([x, ys]) => [x, ys.reduce((a, b) => a + b, 0) / ys.length]);
}

export function experimentCharts(model: ReportModel): ChartSpec[] {
  const x = model.experiment;
  if (!x || x.models.length === 0) return [];
  return [regionAucChart(x), headlineChart(x), rocChart(x), blandAltmanChart(x), centralVsFederatedChart(model, x)].filter((spec): spec is ChartSpec => spec !== null);
}

const modelColour = (name: string) => (name === 'central' ? '#1f77b4' : name === 'federated' ? '#ff7f0e' : '#7f7f7f');

/** Each model's AUC per ASPECTS region; null without regions. */
function regionAucChart(x: ExperimentView): ChartSpec | null {
  if (x.regions.length === 0) return null;
  return {
    id: 'chart-region-auc',
    title: 'AUC per ASPECTS region (test set)',
    config: {
      type: 'bar',
      data: {
        labels: x.regions,
        datasets: x.models.map((m) => ({ label: m.name, data: x.regions.map((r) => m.regions[r]?.auc ?? null), backgroundColor: modelColour(m.name) })),
      },
      options: baseOptions('region', 'AUC', { scales: { y: { min: 0, max: 1, title: { display: true, text: 'AUC' } } } }),
    },
  };
}

const HEADLINE: ReadonlyArray<readonly [string, (m: ModelResult) => number | null]> = [
  ['macro AUC', (m) => m.macroAuc],
  ['accuracy', (m) => m.accuracy],
  ['F1 class 1', (m) => m.classes['1'].f1],
  ['F1 class 0', (m) => m.classes['0'].f1],
  ['ASPECTS within ±1', (m) => (m.aspects.withinOnePercent === null ? null : m.aspects.withinOnePercent / 100)],
  ['ASPECTS ≥ 6 accuracy', (m) => m.aspects.dichotomyAccuracy],
];

/** The headline figures of each model, as fractions. */
function headlineChart(x: ExperimentView): ChartSpec {
  return {
    id: 'chart-headline',
    title: 'headline figures (test set)',
    config: {
      type: 'bar',
      data: { labels: HEADLINE.map(([n]) => n), datasets: x.models.map((m) => ({ label: m.name, data: HEADLINE.map(([, f]) => f(m)), backgroundColor: modelColour(m.name) })) },
      options: baseOptions('', 'fraction', { scales: { y: { min: 0, max: 1 } } }),
    },
  };
}

/** The pooled ROC curve of each model that has one, with the chance diagonal; null when none has. */
function rocChart(x: ExperimentView): ChartSpec | null {
  if (!x.roc.some((r) => r.points.length > 0)) return null;
  return {
    id: 'chart-roc',
    title: 'ROC, all region decisions pooled (test set)',
    config: {
      type: 'line',
      data: {
        datasets: [
          ...x.roc.filter((r) => r.points.length > 0).map((r) => ({
            label: `${r.model} (AUC ${r.auc === null ? '—' : r.auc.toFixed(3)})`,
            data: r.points.map(([fpr, tpr]) => ({ x: fpr, y: tpr })),
            borderColor: modelColour(r.model), backgroundColor: modelColour(r.model), pointRadius: 0, borderWidth: 2, tension: 0,
          })),
          { label: 'chance', hideInLegend: true, data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], borderColor: '#bbbbbb', borderDash: [4, 4], pointRadius: 0, borderWidth: 1 },
        ],
      },
      options: baseOptions('false positive rate', 'true positive rate', { scales: { x: { type: 'linear', min: 0, max: 1, title: { display: true, text: 'false positive rate (1 − specificity)' } }, y: { min: 0, max: 1, title: { display: true, text: 'true positive rate (sensitivity)' } } } }),
    },
  };
}

/** Bland–Altman of the ASPECTS scores of each trained model (round 0 left out): points, bias and limits; null without any. */
function blandAltmanChart(x: ExperimentView): ChartSpec | null {
  const agreement = x.agreement.filter((a) => a.model !== 'round 0');
  if (agreement.length === 0) return null;
  const means = agreement.flatMap((a) => a.points.map((p) => p.mean));
  const [lo, hi] = [Math.min(...means) - 0.5, Math.max(...means) + 0.5];
  return {
    id: 'chart-bland-altman',
    title: 'ASPECTS agreement (Bland–Altman): model − truth against their mean',
    config: {
      type: 'bubble',
      data: {
        datasets: agreement.flatMap((a) => [
          { type: 'bubble', label: `${a.model}: bias ${a.bias.toFixed(2)}, limits ${a.limits[0].toFixed(2)} to ${a.limits[1].toFixed(2)}`, data: a.points.map((p) => ({ x: p.mean, y: p.difference, r: 3 + 2 * Math.sqrt(p.count) })), backgroundColor: `${modelColour(a.model)}88`, borderColor: modelColour(a.model) },
          { type: 'line', label: `${a.model} bias`, hideInLegend: true, data: [{ x: lo, y: a.bias }, { x: hi, y: a.bias }], borderColor: modelColour(a.model), borderWidth: 1, pointRadius: 0 },
          ...a.limits.map((limit, i) => ({ type: 'line', label: `${a.model} ${i === 0 ? '−' : '+'}1.96 SD`, hideInLegend: true, data: [{ x: lo, y: limit }, { x: hi, y: limit }], borderColor: modelColour(a.model), borderDash: [5, 4], borderWidth: 1, pointRadius: 0 })),
        ]),
      },
      options: baseOptions('mean of the two scores', 'model − truth', { scales: { x: { type: 'linear', min: lo, max: hi, title: { display: true, text: 'mean of model and true ASPECTS' } }, y: { title: { display: true, text: 'model − true ASPECTS' } } } }),
    },
  };
}

/** Validation loss by epochs trained: central training against the federation's global model; null when neither has any. */
function centralVsFederatedChart(model: ReportModel, x: ExperimentView): ChartSpec | null {
  const federated = meanGlobalCurve(model, 'loss');
  const central = x.centralEpochs.filter((e) => e.validationLoss !== null);
  const perRound = x.epochsPerRound ?? model.plan.epochsPerRound;
  if (central.length === 0 && federated.length === 0) return null;
  return {
    id: 'chart-central-vs-federated',
    title: 'validation loss by epoch: central vs federated',
    config: {
      type: 'line',
      data: {
        datasets: [
          { label: 'central (its validation split)', data: central.map((e) => ({ x: e.epoch, y: e.validationLoss })), borderColor: '#1f77b4', backgroundColor: '#1f77b4', pointRadius: 2 },
          { label: "federated global model (mean over the edges' validation data)", data: federated.map(([r, y]) => ({ x: r * perRound, y })), borderColor: '#ff7f0e', backgroundColor: '#ff7f0e', pointRadius: 3 },
        ],
      },
      options: baseOptions('epoch', 'loss', { scales: { x: { type: 'linear', title: { display: true, text: 'epochs trained' } }, y: { title: { display: true, text: 'loss' } } } }),
    },
  };
}
