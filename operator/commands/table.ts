/** Plain-text tables for the terminal. */
import { escapeUntrusted } from '../text/untrusted.js';

/** Cells may hold what an edge wrote (metric names, reasons): escaped and bounded like every console line. */
export function renderTable(header: readonly string[], cells: ReadonlyArray<readonly string[]>): string {
  const rows = cells.map((r) => r.map((c) => escapeUntrusted(c ?? '', 200)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const formatNumber = (v: number | undefined, digits = 3): string => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));
