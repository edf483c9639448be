/** `fedgit log`: the rounds of a plan as a table, read from the global repository alone. */
import { Repository } from '../git/repository.js';
import { shortId } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { readGlobalHistory, readMetrics } from '../store/federation.js';
import type { GlobalRecord } from '../store/records.js';
import { renderTable, formatNumber } from './table.js';
import { escapeUntrusted } from '../text/untrusted.js';

type UpdateSummary = { datasetSize?: number; global?: Record<string, number>; local?: Record<string, number> };
export type RoundRow = { record: GlobalRecord; updates: Record<string, UpdateSummary> };

/** Dataset-size-weighted mean of one metric over the updates that report it. */
export function weightedMean(updates: Record<string, UpdateSummary>, side: 'global' | 'local', key: string): number | undefined {
  let sum = 0;
  let total = 0;
  for (const u of Object.values(updates)) {
    const v = u[side]?.[key];
    if (typeof v === 'number' && Number.isFinite(v)) {
      sum += v * (u.datasetSize ?? 1);
      total += u.datasetSize ?? 1;
    }
  }
  return total > 0 ? sum / total : undefined;
}

export async function readRounds(global: Repository, plan: CommittedPlan): Promise<RoundRow[]> {
  const rows: RoundRow[] = [];
  for (const record of await readGlobalHistory(global, plan)) {
    const metrics = await readMetrics(global, record.oid);
    rows.push({ record, updates: (metrics.updates ?? {}) as Record<string, UpdateSummary> });
  }
  return rows;
}

const PREFERRED = ['loss', 'accuracy', 'auc', 'macroAuc', 'f1'];

export function renderRounds(plan: CommittedPlan, rows: readonly RoundRow[], tag: string | null): string {
  const keys = PREFERRED.filter((k) => rows.some((r) => weightedMean(r.updates, 'local', k) !== undefined));
  // A DP plan: the ε spent after each round, as its merge records it (rounded up; round 0 spends nothing).
  const privacy = plan.plan.privacy;
  const epsilonHeader = privacy ? [`ε spent (δ ${privacy.delta})`] : [];
  const epsilonOf = (r: GlobalRecord) => (privacy ? [r.round === 0 ? '0' : r.privacy?.epsilon ? escapeUntrusted(r.privacy.epsilon, 24) : '?'] : []);
  const header = ['round', 'commit', 'time', 'merged (edge:samples)', ...epsilonHeader, ...keys.map((k) => `global ${k}`), ...keys.map((k) => `local ${k}`)];
  const body = rows.map((row, i) => {
    const r = row.record;
    const next = rows[i + 1];
    // The edges of round r+1 evaluated the round-r global model on their validation data before training.
    return [
      String(r.round),
      shortId(r.oid) + (tag === r.oid ? ' (final)' : ''),
      new Date(r.timeMs).toISOString().slice(0, 19).replace('T', ' '),
      r.round === 0 ? (r.source ?? '') : r.merged.map((m) => `${m.edge}:${m.datasetSize}`).join(' ') + (r.rejected.length ? ` (${r.rejected.length} rejected)` : ''),
      ...epsilonOf(r),
      ...keys.map((k) => formatNumber(next ? weightedMean(next.updates, 'global', k) : undefined)),
      ...keys.map((k) => formatNumber(weightedMean(row.updates, 'local', k))),
    ];
  });
  const budget = privacy ? `, DP budget ε ${privacy.targetEpsilon} at δ ${privacy.delta}` : '';
  const title = `plan ${plan.plan.name} (${shortId(plan.id)}): ${Math.max(0, rows.length - 1)}/${plan.plan.rounds} rounds${tag ? `, final ${shortId(tag)}` : ''}${budget}`;
  const note = keys.length ? '\nglobal = the round\'s global model on the edges\' validation data (reported next round); local = the merged local models, mean weighted by samples' : '';
  return `${title}\n${renderTable(header, body)}${note}`;
}
