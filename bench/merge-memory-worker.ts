/**
 * Child process for the merge-memory benchmark: one aggregator merge, alone in its process, so its
 * peak RSS is the merge's. `aggregator`: the real aggregator (observe, check every update, merge,
 * commit round 1). `hold`: every update read into memory first, then the same merge over them all
 * (what the aggregator did before it streamed). `idle`: the same modules loaded, nothing done.
 */
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { createOpener } from '../operator/store/open-repository.js';
import { Repository } from '../operator/git/repository.js';
import { checkpointBytes, readGlobalHead, readEdgeHistory, readWeights, reposUnder } from '../operator/store/federation.js';
import { loadUpdate } from '../operator/store/load-update.js';
import { computeMerge } from '../operator/reconcile/merge.js';
import { parsePlan, type CommittedPlan } from '../operator/plan/plan.js';
import { PLAN_FILE } from '../operator/git/names.js';
import { SILENT } from '../operator/runtime/silent-log.js';
import { builtinRegistries } from '../bin/registries.js';
import type { Update } from '../operator/contracts.js';

const [mode, repos, planId] = process.argv.slice(2) as ['aggregator' | 'hold' | 'idle', string, string];

async function readPlan(): Promise<CommittedPlan> {
  const text = (await new Repository(reposUnder(repos, []).plan).readFile(planId, PLAN_FILE)).toString('utf8');
  return { id: planId, text, plan: parsePlan(text, PLAN_FILE, builtinRegistries) };
}

async function runAggregator(plan: CommittedPlan): Promise<void> {
  const edges = plan.plan.edges.map((e) => e.name);
  const aggregator = new AggregatorOperator({ locate: () => reposUnder(repos, edges), open: createOpener(), ...builtinRegistries, log: SILENT });
  const global = new Repository(reposUnder(repos, edges).global);
  for (let i = 0; i < 5 && (await readGlobalHead(global, plan))?.round !== 1; i++) await aggregator.reconcile();
  if ((await readGlobalHead(global, plan))?.round !== 1) throw new Error('the aggregator did not merge round 1');
}

async function runHolding(plan: CommittedPlan): Promise<void> {
  const where = reposUnder(repos, plan.plan.edges.map((e) => e.name));
  const global = new Repository(where.global);
  const head = (await readGlobalHead(global, plan))!;
  const spec = builtinRegistries.apps.tensorSpec(plan.plan.app.id, plan.plan.app.options);
  const updates: Update[] = [];
  for (const { name } of plan.plan.edges) {
    const repo = new Repository(where.edges[name]!);
    const record = (await readEdgeHistory(repo, plan, 1))[0]!;
    const loaded = await loadUpdate(repo, plan, record, spec);
    if (!loaded.ok) throw new Error(loaded.reason);
    updates.push(loaded.update);
  }
  const strategy = builtinRegistries.strategies.get(plan.plan.strategy, plan.plan.strategyOptions);
  const merge = computeMerge(plan.plan, strategy, updates, await readWeights(global, head.oid));
  checkpointBytes(merge.tensors, { planId, round: 1, architecture: 'noop/v1' });
}

const started = performance.now();
if (mode !== 'idle') {
  const plan = await readPlan();
  await (mode === 'aggregator' ? runAggregator(plan) : runHolding(plan));
}
console.log(JSON.stringify({ ms: performance.now() - started, maxRssKb: process.resourceUsage().maxRSS }));
