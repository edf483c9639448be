/**
 * Chart.js's self-contained UMD build, read from the installed package when a report is made,
 * so the page needs no network when it is viewed. Its own package.json "exports" do not list the
 * UMD file, so the folder is found from the package's main entry.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

let cached: Promise<string> | undefined;

export function readChartLibrary(): Promise<string> {
  cached ??= (async () => {
    const entry = createRequire(import.meta.url).resolve('chart.js');
    return readFile(path.join(path.dirname(entry), 'chart.umd.min.js'), 'utf8');
  })();
  return cached;
}
