/**
 * The experiment's HTML report: `fedgit report` over the federation's repositories with the
 * comparison just written, run as the same fedgit entry point that ran the federation, and
 * copied next to every comparison.md. A report that cannot be made is said, never fatal:
 * the comparison itself is already written.
 */
import { execFile } from 'node:child_process';
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Say } from './cohort.js';

export const HTML_REPORT = 'report.html';

export async function writeHtmlReports(o: { cli: string; repos: string; comparison: string; dirs: readonly string[]; say: Say }): Promise<string[]> {
  const files = o.dirs.map((d) => path.join(d, HTML_REPORT));
  const [first, ...others] = files;
  if (!first) return [];
  // A report of an earlier run must not sit next to this run's comparison if this one fails.
  for (const file of files) await rm(file, { force: true });
  const args = [o.cli, 'report', '--repos', o.repos, '--experiment', o.comparison, '--out', first];
  const failure = await new Promise<string | null>((resolve) => {
    execFile(process.execPath, args, { timeout: 10 * 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, _stdout, stderr) => resolve(error ? (stderr.trim() || error.message) : null));
  });
  if (failure) {
    o.say(`[experiment] the HTML report could not be made (fedgit report): ${failure.split('\n')[0]}`);
    return [];
  }
  for (const other of others) await copyFile(first, other);
  return [first, ...others];
}
