/** `fedgit report` and `fedgit serve`: the CLI's side of the report (operator/cli.ts hands them their flags). */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { loadPlan, whereFrom } from '../commands/locate.js';
import { createLogger, closeLogger } from '../runtime/logging.js';
import type { Registries } from '../runtime/registries.js';
import { readReportModel, renderReportPage } from './build-report.js';
import { readExperimentView } from './read-facts.js';
import { startReportServer } from './serve.js';
import type { ExperimentView } from './experiment-view.js';

export type ReportFlags = { repos?: string; config?: string; plan?: string; out?: string; port?: string; host?: string; experiment?: string };

export const DEFAULT_PORT = 8470;

async function experimentOf(file: string | undefined): Promise<ExperimentView | null> {
  if (!file) return null;
  let view: ExperimentView | null;
  try {
    view = await readExperimentView(file);
  } catch (e) {
    throw new UsageError(`--experiment ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!view) throw new UsageError(`--experiment ${file} is not a comparison.json written by fedgit experiment`);
  return view;
}

/** Writes the report of one plan to `out`; returns the path written. */
export async function writeReport(o: { where: Awaited<ReturnType<typeof whereFrom>>; registries: Registries; planSpec?: string; out: string; experiment?: ExperimentView | null }): Promise<string> {
  const plan = await loadPlan(o.where, o.registries, o.planSpec);
  const model = await readReportModel(o.where, o.registries, plan, { experiment: o.experiment ?? null });
  const out = path.resolve(o.out);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, await renderReportPage(model));
  return out;
}

export async function runReportCommand(command: 'report' | 'serve', flags: ReportFlags, registries: Registries): Promise<number> {
  const where = await whereFrom(flags);
  const experiment = await experimentOf(flags.experiment);
  if (command === 'report') {
    const out = await writeReport({ where, registries, ...(flags.plan ? { planSpec: flags.plan } : {}), out: flags.out ?? 'report.html', experiment });
    console.log(`report written to ${out}`);
    return 0;
  }
  const port = flags.port === undefined ? DEFAULT_PORT : Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new UsageError(`--port takes a port number (0 for any free one), got '${flags.port}'`);
  const log = createLogger({ participant: 'serve' });
  const server = await startReportServer({ where, registries, ...(flags.plan ? { planSpec: flags.plan } : {}), host: flags.host ?? '127.0.0.1', port, experiment, log });
  console.log(`fedgit serve: ${server.url} (read-only; Ctrl-C stops)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  await closeLogger(log);
  return 0;
}
