/**
 * The report as one self-contained HTML page: tables rendered here (every string from git
 * escaped), charts drawn in the page by the bundled Chart.js from embedded JSON. Pure: the
 * chart library's text and the nonce are given.
 */
import { createHash } from 'node:crypto';
import { shortId } from '../git/names.js';
import { escapeHtml as e, inlineScriptText, renderScriptJson } from './html.js';
import { experimentCharts, federationCharts, type ChartSpec } from './charts.js';
import { CLIENT_SCRIPT } from './client-script.js';
import type { CellStatus, ReportModel, RoundView } from './model.js';
import type { ExperimentView, ModelResult } from './experiment-view.js';
import { renderSlicePng, SLICE_SCALE } from './slices.js';

export type RenderOptions = {
  /** Chart.js's UMD build (chart-library.ts). */
  readonly chartLibrary: string;
  /** A fresh random value per page: only scripts carrying it run (Content-Security-Policy). */
  readonly nonce: string;
  /** The live view: the page listens for server-sent events at `events`. */
  readonly live?: boolean;
};

const fmt = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));
const time = (ms: number | null) => (ms === null ? '—' : new Date(ms).toISOString().slice(0, 19).replace('T', ' '));
const commitCode = (oid: string | null) => (oid ? `<code title="${e(oid)}">${e(shortId(oid))}</code>` : '—');

/** What the page shows, without the time it was made: equal versions mean nothing new to show. */
export function reportVersion(model: ReportModel): string {
  return createHash('sha256').update(JSON.stringify({ ...model, generatedAt: '' })).digest('hex').slice(0, 16);
}

const STATUS: Record<CellStatus, { symbol: string; text: string }> = {
  merged: { symbol: '✓', text: 'merged' },
  rejected: { symbol: '✗', text: 'refused by the aggregator' },
  late: { symbol: '»', text: 'pushed, but the round merged without it (late or stale)' },
  missed: { symbol: '–', text: 'nothing pushed before the round merged' },
  waiting: { symbol: '…', text: 'pushed, waiting for the merge' },
  pending: { symbol: '○', text: 'not pushed yet' },
  unreachable: { symbol: '?', text: 'repository not readable' },
};

function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>, cls = ''): string {
  return `<div class="scroll"><table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n')}</tbody></table></div>`;
}

function chartFigure(spec: ChartSpec, caption = ''): string {
  return `<figure class="chart"><figcaption>${e(spec.title)}${caption ? ` — ${caption}` : ''}</figcaption><div class="canvas-box"><canvas id="${e(spec.id)}" role="img" aria-label="${e(spec.title)}"></canvas></div></figure>`;
}

function summarySection(model: ReportModel): string {
  const p = model.plan;
  const s = model.state;
  const deadline = p.roundDeadlineMs >= 60_000 ? `${(p.roundDeadlineMs / 60_000).toFixed(p.roundDeadlineMs % 60_000 ? 1 : 0)} min` : `${(p.roundDeadlineMs / 1000).toFixed(0)} s`;
  const audited = model.rounds.filter((r) => r.audit !== null);
  const failed = audited.filter((r) => !r.audit!.ok);
  const facts: Array<[string, string]> = [
    ['plan', `${e(p.name)} <code title="${e(p.id)}">${e(shortId(p.id))}</code>`],
    ['app', e(p.app)],
    ['edges', p.edges.map((x) => e(x)).join(', ')],
    ['rounds', `${s.roundsDone} of ${p.rounds} merged${s.finished ? ', finished' : ''} × ${p.epochsPerRound} epoch${p.epochsPerRound === 1 ? '' : 's'} per round`],
    ['strategy', `${e(p.strategy)}; a round merges when every edge has pushed, or after ${deadline} with at least ${p.minEdges}`],
    ['signatures', `${p.signedEdges} of ${p.edges.length} edges have a key; aggregator ${p.aggregatorKey ? 'has a key' : 'unsigned'}`],
    ['final model', s.finalCommit ? `${commitCode(s.finalCommit)} (tag inference-${e(p.name)}-${e(shortId(p.id))})` : 'not yet'],
    ['audit', audited.length === 0 ? 'not run' : failed.length === 0 ? `<span class="ok">all ${audited.length} global commits recomputed bit for bit</span>` : `<span class="bad">${failed.length} of ${audited.length} global commits FAIL the audit</span>`],
    ['refused updates', String(model.rejections.length)],
  ];
  return `<section id="summary"><h2>Summary</h2><dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl></section>`;
}

function curvesSection(model: ReportModel, specs: readonly ChartSpec[]): string {
  const curves = specs.filter((s) => s.id.startsWith('chart-metric-'));
  const body = curves.length
    ? `<p>Solid: the global model after round <var>r</var> on each edge's validation data (reported by the edge when round <var>r</var>+1 starts). Dashed: each edge's local model after training round <var>r</var>.</p><div class="grid">${curves.map((c) => chartFigure(c)).join('')}</div>`
    : '<p>No edge has reported metrics yet.</p>';
  return `<section id="curves"><h2>Metrics per round</h2>${body}</section>`;
}

function timelineSection(model: ReportModel, specs: readonly ChartSpec[]): string {
  if (model.timeline.length === 0) return '<section id="timeline"><h2>Timeline</h2><p>No round has started yet.</p></section>';
  const head = ['edge', ...model.timeline.map((t) => `<span title="opened ${e(time(t.openedMs))}${t.closedMs ? `, merged ${e(time(t.closedMs))}` : ''}">${t.round}</span>`)];
  const rows = model.plan.edges.map((edge) => [
    e(edge),
    ...model.timeline.map((t) => {
      const c = t.cells.find((x) => x.edge === edge)!;
      const title = [STATUS[c.status].text, c.commit ? `commit ${c.commit}` : '', c.subject ?? '', c.startedSeconds !== null ? `started training ${c.startedSeconds.toFixed(0)} s after the round opened` : '', c.delaySeconds !== null ? `pushed ${c.delaySeconds.toFixed(0)} s after the round opened` : '', c.rejected ? `${c.rejected} refused: ${c.reason ?? ''}` : ''].filter(Boolean).join('\n');
      return `<span class="cell ${c.status}" title="${e(title, 1200)}">${STATUS[c.status].symbol}${c.delaySeconds !== null ? `<small>${c.delaySeconds.toFixed(0)}s</small>` : ''}${c.rejected && c.status !== 'rejected' ? '<small class="bad">✗</small>' : ''}</span>`;
    }),
  ]);
  const perEdge = model.plan.edges.map((edge) => {
    const cells = model.timeline.map((t) => t.cells.find((c) => c.edge === edge)!);
    const count = (status: CellStatus) => cells.filter((c) => c.status === status).length;
    const delays = cells.flatMap((c) => (c.delaySeconds === null ? [] : [c.delaySeconds])).sort((a, b) => a - b);
    const median = delays.length ? delays[Math.floor((delays.length - 1) / 2)]! : null;
    const starts = cells.flatMap((c) => (c.startedSeconds === null ? [] : [c.startedSeconds])).sort((a, b) => a - b);
    const medianStart = starts.length ? starts[Math.floor((starts.length - 1) / 2)]! : null;
    return [e(edge), String(count('merged')), String(count('late')), String(count('missed')), String(cells.reduce((n, c) => n + c.rejected, 0)), medianStart === null ? '—' : `${medianStart.toFixed(0)} s`, median === null ? '—' : `${median.toFixed(0)} s`, delays.length ? `${delays[delays.length - 1]!.toFixed(0)} s` : '—'];
  });
  const edgeTable = table(['edge', 'merged', 'late', 'missed', 'refused updates', 'median start delay', 'median push delay', 'longest'], perEdge);
  const legend = Object.entries(STATUS).map(([k, v]) => `<span class="cell ${k}">${v.symbol}</span> ${e(v.text)}`).join(' · ');
  const delay = specs.find((s) => s.id === 'chart-push-delay');
  return `<section id="timeline"><h2>Timeline</h2><p>One column per round: what each edge did between the global commit it trains from and the merge. Git records commit times to the second; the figure under a mark is when the edge pushed, counted from the round's start, and the mark's tooltip also says when it began training (the commit's author date).</p>
${table(head, rows, 'timeline')}<p class="legend">${legend}</p>${edgeTable}${delay ? chartFigure(delay, 'stragglers stand out') : ''}</section>`;
}

function mergedCell(r: RoundView): string {
  if (r.round === 0) return e(r.source ?? 'initial weights');
  return r.merged.map((m) => `${e(m.edge)} <code title="${e(m.commit)}">${e(shortId(m.commit))}</code> ×${fmt(m.weight, 4)} <small>(${m.datasetSize} samples${m.signed === true ? ', signed' : m.signed === null ? ', commit not found' : ''})</small>`).join('<br>');
}

function auditCell(r: RoundView): string {
  if (!r.audit) return 'not run';
  if (r.audit.ok) return `<span class="ok">✓ passed</span> <small>(${r.audit.checks} checks)</small>`;
  return `<span class="bad">✗ FAILED</span><br><small>${r.audit.failed.map((f) => e(f)).join('<br>')}</small>`;
}

function mergesSection(model: ReportModel, specs: readonly ChartSpec[]): string {
  const weights = specs.find((s) => s.id === 'chart-merge-weights');
  const rows = model.rounds.map((r) => [String(r.round), commitCode(r.commit), e(time(r.timeMs)), e(r.strategy ?? (r.round === 0 ? 'initial' : '?')), mergedCell(r), r.signed ? 'signed' : '—', auditCell(r)]);
  return `<section id="merges"><h2>Merges</h2>${weights ? chartFigure(weights) : ''}
${table(['round', 'commit', 'time (UTC)', 'strategy', 'merged updates (weight)', 'signature', 'audit'], rows)}</section>`;
}

function rejectionsSection(model: ReportModel): string {
  const foreign = model.foreign.length
    ? `<h3>Commits claiming another edge</h3>${table(['repository of', 'claims to be', 'commit', 'subject'], model.foreign.map((f) => [e(f.repository), e(f.claimed), commitCode(f.commit), e(f.subject)]))}`
    : '';
  const body = model.rejections.length
    ? table(['round', 'edge', 'commit', 'refused at (UTC)', 'reason'], model.rejections.map((r) => [String(r.round), e(r.edge), commitCode(r.commit), e(time(r.timeMs)), `<span class="reason">${e(r.reason)}</span>`]))
    : '<p>The aggregator refused no update.</p>';
  return `<section id="rejections"><h2>Refused updates</h2>${body}${foreign}</section>`;
}

function modelSection(model: ReportModel): string {
  if (model.tensors.length === 0) return '';
  const count = model.tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  return `<section id="weights"><h2>Weights of the newest global model</h2><p>${model.tensors.length} tensors, ${count.toLocaleString('en')} values.</p>
<details><summary>tensor names and shapes</summary>${table(['tensor', 'shape'], model.tensors.map((t) => [`<code>${e(t.name)}</code>`, `[${t.shape.join(', ')}]`]))}</details></section>`;
}

function confusionTable(m: ModelResult): string {
  const c = m.confusion;
  if (!c) return '';
  return `<figure class="confusion"><figcaption>${e(m.name)}</figcaption><table><thead><tr><th></th><th>predicted affected</th><th>predicted unaffected</th></tr></thead><tbody>
<tr><th>affected</th><td class="tp">${c.tp}</td><td class="fn">${c.fn}</td></tr><tr><th>unaffected</th><td class="fp">${c.fp}</td><td class="tn">${c.tn}</td></tr></tbody></table></figure>`;
}

function examplesBlock(x: ExperimentView): string {
  if (x.examples.length === 0) return '';
  const blocks = x.examples.map((ex) => {
    const decider = ex.probabilities.find(([m]) => m === 'federated') ?? ex.probabilities[ex.probabilities.length - 1];
    const called = ex.regions.map((_, r) => (decider ? decider[1][r]! >= ex.threshold : false));
    const figures = ex.slices.map((slice) => {
      const { png, centres } = renderSlicePng({ width: slice.width, height: slice.height, image: Buffer.from(slice.image, 'base64'), regions: Buffer.from(slice.regions, 'base64') }, ex.truth, called);
      const names = [...centres].map(([labelValue, [fx, fy]]) => `<span class="region-name" style="left:${(fx * 100).toFixed(1)}%;top:${(fy * 100).toFixed(1)}%">${e(ex.regions[labelValue - 1] ?? '?')}</span>`).join('');
      return `<figure class="slice"><div class="slice-box" style="width:${slice.width * SLICE_SCALE}px"><img alt="${e(`${ex.id} at z = ${slice.zMm} mm`)}" src="data:image/png;base64,${png.toString('base64')}">${names}</div><figcaption>z = ${slice.zMm} mm (MNI)</figcaption></figure>`;
    }).join('');
    const rows = ex.regions.map((region, r) => [e(region), ex.truth[r] ? '<b>affected</b>' : 'unaffected', ...ex.probabilities.map(([, p]) => {
      const text = fmt(p[r], 2);
      return (p[r]! >= ex.threshold) === ex.truth[r] ? text : `<span class="bad">${text}</span>`;
    })]);
    const table = `<table class="probabilities"><thead><tr><th>region</th><th>label</th>${ex.probabilities.map(([m]) => `<th>${e(m)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
    return `<div class="example"><h4>${e(ex.id)} — symptomatic side ${e(ex.hemisphere === 'L' ? 'left' : ex.hemisphere === 'R' ? 'right' : '?')}</h4><div class="example-row">${figures}${table}</div></div>`;
  }).join('');
  return `<h3>Example slices</h3><p>Test scans registered into MNI space, 2 mm, window 0–80 HU, radiological view (the patient's right on the left). Regions of the symptomatic side: outline <span style="color:#ff9600">orange</span> where the label says affected, <span style="color:#00a8c0">cyan</span> where not; filled red where the federated model says affected. Probabilities that disagree with the label are marked.</p>${blocks}`;
}

function experimentSection(x: ExperimentView | null, specs: readonly ChartSpec[]): string {
  if (!x) return '';
  const chart = (id: string) => {
    const s = specs.find((c) => c.id === id);
    return s ? chartFigure(s) : '';
  };
  const settings = [
    x.rounds !== null ? `${x.rounds} rounds × ${x.epochsPerRound ?? '?'} epochs` : '',
    x.engines.length ? `engines ${x.engines.map(([edge, k]) => `${e(edge)}: ${e(k)}`).join(', ')}` : '',
    x.trainVolumes.length ? `training volumes ${x.trainVolumes.map(([edge, n]) => `${e(edge)} ${n}`).join(', ')}` : '',
    x.testVolumes !== null ? `${x.testVolumes} test volumes` : '',
  ].filter(Boolean).join('; ');
  const headline = table(['model', 'test loss', 'macro AUC', 'accuracy', 'F1 class 1', 'F1 class 0', 'ASPECTS mean diff', 'mean |diff|', 'within ±1', 'ASPECTS ≥ 6 accuracy'],
    x.models.map((m) => [e(m.name), fmt(m.loss, 4), fmt(m.macroAuc), fmt(m.accuracy), fmt(m.classes['1'].f1), fmt(m.classes['0'].f1), fmt(m.aspects.meanDifference, 2), fmt(m.aspects.meanAbsoluteDifference, 2),
      m.aspects.withinOnePercent === null ? '—' : `${m.aspects.withinOnePercent.toFixed(1)} %`, m.aspects.dichotomyAccuracy === null ? '—' : `${(m.aspects.dichotomyAccuracy * 100).toFixed(1)} %`]));
  const compared = x.models.filter((m) => m.name !== 'round 0');
  const classes = table(['model', 'class', 'precision', 'recall', 'F1', 'support'], compared.flatMap((m) => (['0', '1'] as const).map((c) => [e(m.name), c === '1' ? '1 (affected)' : '0 (unaffected)', fmt(m.classes[c].precision), fmt(m.classes[c].recall), fmt(m.classes[c].f1), fmt(m.classes[c].support, 0)])));
  const regions = table(['region', ...compared.flatMap((m) => [`${e(m.name)} sens`, `${e(m.name)} spec`, `${e(m.name)} AUC`]), 'positives'],
    x.regions.map((r) => [e(r), ...compared.flatMap((m) => [fmt(m.regions[r]?.sensitivity), fmt(m.regions[r]?.specificity), fmt(m.regions[r]?.auc)]), fmt(compared[0]?.regions[r]?.positives, 0)]));
  return `<section id="experiment"><h2>Experiment: central vs federated vs round 0</h2><p>${settings}${x.createdAt ? ` (${e(x.createdAt)})` : ''}.</p>
${headline}<div class="grid">${chart('chart-headline')}${chart('chart-region-auc')}${chart('chart-central-vs-federated')}${chart('chart-roc')}${chart('chart-bland-altman')}</div>
<h3>Per class (region decisions pooled over the test set)</h3>${classes}
<h3>Confusion matrices</h3><p>Rebuilt from each class's recall and support.</p><div class="confusions">${x.models.map(confusionTable).join('')}</div>
<h3>Per region</h3>${regions}
${examplesBlock(x)}
<p class="note">${x.scans !== null ? `ROC curves and the Bland–Altman plot are computed from the ${x.scans} test scans' predictions saved in comparison.json.` : 'ROC curves and a Bland–Altman plot need the per-scan predictions that newer comparison.json files hold; this one has only summary figures.'} </p></section>`;
}

const STYLE = `
:root{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;background:#fff}
body{margin:0 auto;max-width:1200px;padding:0 16px 48px}
header{border-bottom:1px solid #d0d7de;margin-bottom:8px}
h1{font-size:1.5rem;margin:16px 0 4px}h2{font-size:1.2rem;margin-top:28px;border-bottom:1px solid #eaeef2}h3{font-size:1rem}
nav a{margin-right:12px}
dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px}dt{font-weight:600}dd{margin:0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin:8px 0}th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f6f8fa}
table.timeline td,table.timeline th{text-align:center;min-width:2.4em}
.cell{display:inline-block;min-width:1.6em;padding:1px 3px;border-radius:3px;font-weight:600}
.cell small{display:block;font-weight:400;font-size:.7rem}
.cell.merged{background:#d1f5d3}.cell.rejected{background:#ffd7d5;color:#82071e}.cell.late{background:#fff1c2}.cell.missed{background:#eaeef2;color:#57606a}
.cell.waiting{background:#ddf4ff}.cell.pending{background:#fff}.cell.unreachable{background:#f6f8fa}
.legend{font-size:.8rem;color:#57606a}
.ok{color:#116329}.bad{color:#a40e26;font-weight:600}
.reason{font-family:ui-monospace,monospace;font-size:.8rem;white-space:pre-wrap;word-break:break-all}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:16px}
figure.chart{margin:8px 0}figcaption{font-weight:600;font-size:.9rem;margin-bottom:4px}
.canvas-box{position:relative;height:260px}
.confusions{display:flex;flex-wrap:wrap;gap:16px}.confusion td{text-align:right;min-width:4em}
td.tp,td.tn{background:#d1f5d3}td.fp,td.fn{background:#ffd7d5}
.note{font-size:.85rem;color:#57606a}
#fedgit-live{font-size:.8rem;color:#57606a}
.example-row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure.slice{margin:0}.slice-box{position:relative}.slice-box img{display:block;width:100%;height:auto}
.region-name{position:absolute;transform:translate(-50%,-50%);font-size:.7rem;font-weight:700;color:#fff;text-shadow:0 0 2px #000,0 0 2px #000;pointer-events:none}
table.probabilities td{text-align:right}
`;

export function renderReportHtml(model: ReportModel, options: RenderOptions): string {
  const specs = [...federationCharts(model), ...experimentCharts(model)];
  const p = model.plan;
  const s = model.state;
  const csp = [`default-src 'none'`, `script-src 'nonce-${options.nonce}'`, `style-src 'unsafe-inline'`, `img-src data:`, `connect-src 'self'`, `base-uri 'none'`, `form-action 'none'`].join('; ');
  const title = `fedgit: plan ${p.name} (${shortId(p.id)})`;
  const stateLine = `${s.roundsDone} of ${p.rounds} rounds merged${s.finished ? ' — finished' : ''}; built from git at ${time(Date.parse(model.generatedAt))} UTC`;
  const sections = [
    summarySection(model),
    curvesSection(model, specs),
    timelineSection(model, specs),
    mergesSection(model, specs),
    rejectionsSection(model),
    experimentSection(model.experiment, specs),
    modelSection(model),
  ].join('\n');
  const nav = [['summary', 'summary'], ['curves', 'metrics'], ['timeline', 'timeline'], ['merges', 'merges'], ['rejections', 'refused'], ...(model.experiment ? [['experiment', 'experiment']] : []), ...(model.tensors.length ? [['weights', 'weights']] : [])]
    .map(([id, text]) => `<a href="#${id}">${text}</a>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="generator" content="fedgit report">
<title>${e(title)}</title>
<style>${STYLE}</style></head>
<body data-live="${options.live ? '1' : '0'}">
<header><h1>${e(title)}</h1>
<p id="fedgit-state" data-version="${reportVersion(model)}" data-rounds-done="${s.roundsDone}" data-head="${e(s.head ?? '')}">${e(stateLine)}</p>
${options.live ? '<p id="fedgit-live">live: connecting</p>' : ''}<nav>${nav}</nav></header>
<main id="fedgit-main">
${sections}
</main>
<script type="application/json" id="fedgit-data">${renderScriptJson({ charts: specs })}</script>
<script nonce="${options.nonce}">${inlineScriptText(options.chartLibrary)}</script>
<script nonce="${options.nonce}">${CLIENT_SCRIPT}</script>
</body></html>
`;
}
