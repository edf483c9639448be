/**
 * A linear-toy federation driven in-process: the real aggregator operator merges, and each
 * edge trains the toy app and commits with fedgit's own writer. Rounds take milliseconds, and
 * a test decides who pushes what in each round (to make stragglers and refusals).
 */
import type { KeyObject } from 'node:crypto';
import { AggregatorOperator } from '../../operator/reconcile/aggregator-operator.js';
import { createOpener } from '../../operator/store/open-repository.js';
import { createLogger } from '../../operator/runtime/logging.js';
import { commitEdgeUpdate, readGlobalHead, readWeights, reposUnder } from '../../operator/store/federation.js';
import { Repository } from '../../operator/git/repository.js';
import type { EdgeApp, Metrics, Tensors } from '../../operator/contracts.js';
import type { GlobalRecord } from '../../operator/store/records.js';
import { builtinRegistries } from '../../bin/registries.js';
import { sign } from '../../operator/trust/sign.js';
import { setUpFederation } from './federation.js';
import { toyPlan } from './temp.js';

export type ToyFederation = Awaited<ReturnType<typeof startToyFederation>>;

/** `keys`: the edges' signing keys; an edge that has one signs its updates (a plan listing public keys requires it). */
export async function startToyFederation(dir: string, o: { rounds: number; edges: string[]; minEdges?: number; name?: string; planYaml?: string; keys?: Readonly<Record<string, KeyObject>> }) {
  const yaml = o.planYaml ?? toyPlan({ rounds: o.rounds, edges: o.edges, minEdges: o.minEdges ?? o.edges.length, ...(o.name ? { name: o.name } : {}) });
  const { plan, repos, where } = await setUpFederation(dir, yaml);
  const registries = builtinRegistries;
  // The aggregator's clock runs ahead only while a test lets a round's deadline pass.
  let aheadMs = 0;
  const aggregator = new AggregatorOperator({ locate: (e) => reposUnder(repos, e), open: createOpener(), ...registries, log: createLogger({ participant: 'aggregator', console: false }), now: () => Date.now() + aheadMs });
  const settle = async () => {
    for (let i = 0; i < 20 && (await aggregator.reconcile())?.lookAgain; i++);
  };
  await settle();
  const global = await aggregator.global();
  const apps = new Map<string, EdgeApp>();
  for (const edge of plan.plan.edges.map((e) => e.name)) {
    apps.set(edge, await registries.apps.createEdgeApp(plan.plan.app.id, plan.plan.app.options, { edge, engine: { kind: 'builtin' }, log: { error() {}, warn() {}, info() {}, debug() {} } }));
  }
  const head = async (): Promise<GlobalRecord> => (await readGlobalHead(global, plan))!;

  /** `edge` trains from the global head (or an older `base`: a straggler) and pushes (or pushes the tensors or metrics given instead); returns its commit. */
  const push = async (edge: string, replace: { tensors?: Tensors; metrics?: { global: Metrics; local: Metrics }; base?: GlobalRecord; startedMs?: number } = {}): Promise<string> => {
    const base = replace.base ?? await head();
    const app = apps.get(edge)!;
    const key = o.keys?.[edge];
    const result = await app.train({ weights: await readWeights(global, base.oid), epochs: plan.plan.epochsPerRound, round: base.round + 1, planId: plan.id, seed: plan.plan.seed, signal: new AbortController().signal });
    return commitEdgeUpdate(new Repository(where.edges[edge]!), {
      plan, edge, round: base.round + 1, base: base.oid, architecture: app.architecture, tensors: replace.tensors ?? result.weights, datasetSize: result.datasetSize, metrics: replace.metrics ?? result.metrics,
      ...(replace.startedMs !== undefined ? { startedMs: replace.startedMs } : {}),
      ...(key ? { sign: (statement: string) => sign(statement, key) } : {}),
    });
  };

  /** One round: the given edges push, then the aggregator looks until it has nothing more to do. */
  const round = async (edges: readonly string[] = o.edges): Promise<GlobalRecord> => {
    for (const edge of edges) await push(edge);
    await settle();
    return head();
  };

  /** The round's deadline passes: the aggregator merges what it has (at least minEdges). */
  const passDeadline = async (): Promise<GlobalRecord> => {
    aheadMs = plan.plan.roundDeadlineMs + 1_000;
    try {
      await settle();
    } finally {
      aheadMs = 0;
    }
    return head();
  };

  return { plan, repos, passDeadline, where, global, registries, aggregator, settle, push, round, head, close: async () => Promise.all([...apps.values()].map((a) => a.close())) };
}
