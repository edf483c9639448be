/** Reads a plan's history from git and renders the report page: what `fedgit report` writes and `fedgit serve` sends. */
import { randomBytes } from 'node:crypto';
import type { Where } from '../commands/locate.js';
import type { CommittedPlan } from '../plan/plan.js';
import type { Registries } from '../runtime/registries.js';
import { readChartLibrary } from './chart-library.js';
import { buildReportModel, type ReportModel } from './model.js';
import { readFederationFacts, type ReadOptions } from './read-facts.js';
import { renderReportHtml } from './render.js';

export async function readReportModel(where: Where, registries: Registries, plan: CommittedPlan, options: ReadOptions = {}): Promise<ReportModel> {
  return buildReportModel(await readFederationFacts(where, registries, plan, options));
}

export async function renderReportPage(model: ReportModel, options: { live?: boolean } = {}): Promise<string> {
  return renderReportHtml(model, { chartLibrary: await readChartLibrary(), nonce: randomBytes(16).toString('base64'), live: options.live ?? false });
}
