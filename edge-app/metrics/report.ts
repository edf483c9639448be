/**
 * A Markdown table comparing metric sets side by side (e.g. "central" vs
 * "federated"): overall rows, per-class precision/recall/F1, per-region
 * sensitivity/specificity/AUC, ASPECTS agreement. Pure; reads any Metrics
 * shaped like computeAspectsMetrics' output and prints "—" for what is missing.
 */
import type { MetricValue, Metrics } from '../../sdk/index.js';
import { METRIC_REGIONS } from './aspects-metrics.js';

type Row = { label: string; path: string[]; digits?: number; suffix?: string };

function lookup(m: Metrics, path: readonly string[]): MetricValue | undefined {
  let at: MetricValue | undefined = m;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || Array.isArray(at)) return undefined;
    at = (at as { [key: string]: MetricValue })[key];
  }
  return at;
}

function format(v: MetricValue | undefined, digits: number, suffix: string): string {
  if (typeof v === 'number' && Number.isFinite(v)) return `${Number.isInteger(v) && digits === 0 ? v : v.toFixed(digits)}${suffix}`;
  if (typeof v === 'string' || typeof v === 'boolean') return String(v);
  return '—';
}

function rows(): Row[] {
  const out: Row[] = [
    { label: 'volumes', path: ['n'], digits: 0 },
    { label: 'loss (mean BCE)', path: ['loss'] },
    { label: 'accuracy (all region decisions)', path: ['accuracy'] },
    { label: 'macro AUC', path: ['macroAuc'] },
  ];
  for (const c of ['0', '1']) {
    const name = c === '1' ? 'class 1 (affected)' : 'class 0 (unaffected)';
    out.push({ label: `${name} precision`, path: ['classes', c, 'precision'] });
    out.push({ label: `${name} recall`, path: ['classes', c, 'recall'] });
    out.push({ label: `${name} F1`, path: ['classes', c, 'f1'] });
    out.push({ label: `${name} support`, path: ['classes', c, 'support'], digits: 0 });
  }
  for (const r of METRIC_REGIONS) {
    out.push({ label: `${r} sensitivity`, path: ['regions', r, 'sensitivity'] });
    out.push({ label: `${r} specificity`, path: ['regions', r, 'specificity'] });
    out.push({ label: `${r} AUC`, path: ['regions', r, 'auc'] });
  }
  out.push({ label: 'ASPECTS mean difference (pred − true)', path: ['aspects', 'meanDifference'], digits: 2 });
  out.push({ label: 'ASPECTS mean absolute difference', path: ['aspects', 'meanAbsoluteDifference'], digits: 2 });
  out.push({ label: 'ASPECTS within ±1', path: ['aspects', 'withinOnePercent'], digits: 1, suffix: ' %' });
  out.push({ label: 'ASPECTS ≥ 6 vs < 6 accuracy', path: ['aspects', 'dichotomyAccuracy'] });
  return out;
}

const escapeCell = (s: string) => s.replace(/\|/g, '\\|');

/** Markdown table with one column per named metric set, in the order given. */
export function renderMetricsTable(sets: ReadonlyArray<readonly [name: string, metrics: Metrics]>): string {
  const header = `| metric | ${sets.map(([name]) => escapeCell(name)).join(' | ')} |`;
  const rule = `|---|${sets.map(() => '---:').join('|')}|`;
  const body = rows().map(
    ({ label, path, digits = 3, suffix = '' }) => `| ${label} | ${sets.map(([, m]) => format(lookup(m, path), digits, suffix)).join(' | ')} |`,
  );
  return [header, rule, ...body].join('\n') + '\n';
}

/** Two metric sets side by side, e.g. renderMetricsComparison(central, federated). */
export function renderMetricsComparison(a: Metrics, b: Metrics, names: readonly [string, string] = ['central', 'federated']): string {
  return renderMetricsTable([
    [names[0], a],
    [names[1], b],
  ]);
}
