/**
 * A DP federation driven in-process with the real aggregator operator: the tests call `round()`,
 * which trains every edge's app from the global head, commits the updates and lets the aggregator
 * merge. The aggregator's log lines are kept; its secret lives in `secretFile`.
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import type { EdgeApp, Log } from '../../operator/contracts.js';
import { AggregatorOperator } from '../../operator/reconcile/aggregator-operator.js';
import { createOpener } from '../../operator/store/open-repository.js';
import { commitEdgeUpdate, readGlobalHead, readWeights, reposUnder } from '../../operator/store/federation.js';
import { Repository } from '../../operator/git/repository.js';
import type { GlobalRecord } from '../../operator/store/records.js';
import type { CommittedPlan } from '../../operator/plan/plan.js';
import { builtinRegistries } from '../../bin/registries.js';
import { auditCommit } from '../../operator/commands/audit.js';
import { deriveNoiseSeed } from '../../operator/privacy/gaussian-noise.js';
import { setUpFederation } from './federation.js';
import { tempDir } from './temp.js';
import { whereUnder } from './chaos.js';

export type DpFederationOptions = {
  /** The edges' apps; default: the plan's app, built in. */
  readonly createApp?: (edge: string, context: { readonly plan: CommittedPlan; readonly log: Log; readonly dir: string }) => Promise<EdgeApp>;
};

export async function startDpFederation(t: Parameters<typeof tempDir>[0], planYaml: string, options: DpFederationOptions = {}) {
  const dir = await tempDir(t);
  const { plan, repos, where } = await setUpFederation(dir, planYaml);
  const edges = plan.plan.edges.map((e) => e.name);
  const secretFile = path.join(dir, 'aggregator-state', 'dp-noise.key');
  const lines: string[] = [];
  const keep = (level: string) => (message: string, data?: Record<string, unknown>) => void lines.push(`${level} ${message} ${JSON.stringify(data ?? {})}`);
  const log: Log = { error: keep('error'), warn: keep('warn'), info: keep('info'), debug: keep('debug') };
  const aggregator = new AggregatorOperator({ locate: (e) => reposUnder(repos, e), open: createOpener(), ...builtinRegistries, log, noiseSecretFile: secretFile });
  const settle = async () => {
    for (let i = 0; i < 20 && (await aggregator.reconcile())?.lookAgain; i++);
  };
  await settle();
  const global = await aggregator.global();
  const builtin = (edge: string) => builtinRegistries.apps.createEdgeApp(plan.plan.app.id, plan.plan.app.options, { edge, engine: { kind: 'builtin' }, log });
  const apps = new Map<string, EdgeApp>();
  for (const edge of edges) apps.set(edge, await (options.createApp ? options.createApp(edge, { plan, log, dir }) : builtin(edge)));
  t.after(async () => void (await Promise.all([...apps.values()].map((a) => a.close()))));
  const head = async (): Promise<GlobalRecord> => (await readGlobalHead(global, plan))!;
  const round = async (): Promise<GlobalRecord> => {
    const base = await head();
    for (const edge of edges) {
      const app = apps.get(edge)!;
      const result = await app.train({ weights: await readWeights(global, base.oid), epochs: 1, round: base.round + 1, planId: plan.id, seed: plan.plan.seed, signal: new AbortController().signal });
      await commitEdgeUpdate(new Repository(where.edges[edge]!), { plan, edge, round: base.round + 1, base: base.oid, architecture: app.architecture, tensors: result.weights, datasetSize: result.datasetSize, metrics: result.metrics });
    }
    await settle();
    return head();
  };
  const seedOf = async (r: number) => deriveNoiseSeed(await readFile(secretFile), plan.id, r);
  const audit = (oid: string, noiseSeed?: Uint8Array) => auditCommit(whereUnder(repos), builtinRegistries, oid, noiseSeed ? { noiseSeed } : {});
  return { dir, plan, repos, global, lines, secretFile, head, round, seedOf, audit };
}

export type DpFederation = Awaited<ReturnType<typeof startDpFederation>>;

/** The failed checks of an audit report, for assertion messages. */
export const failures = (report: { checks: readonly { ok: boolean; what: string }[] }) => report.checks.filter((c) => !c.ok).map((c) => c.what).join('; ');
