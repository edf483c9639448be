/** The aggregator: observe git, decide, act — merges a round when its updates are in. */
import type { AppRegistry, StrategyRegistry, Tensors, Update } from '../contracts.js';
import { Repository } from '../git/repository.js';
import { isFedgitError, PlanInvalid } from '../errors.js';
import { shortId, type MergedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import {
  commitGlobalRound, readEdgeHistory, readFinalTag, readGlobalHead, readWeights, tagFinal, type RepoLocations,
} from '../store/federation.js';
import type { EdgeRecord } from '../store/records.js';
import { decideAggregator, type AggregatorAction, type AggregatorObserved } from './aggregator-decide.js';
import { updateProblem } from './validate-update.js';
import type { Logger } from '../runtime/logging.js';
import type { ReconcileOutcome } from '../runtime/reconcile-loop.js';
import { PlanSource } from '../runtime/plan-source.js';

export type AggregatorDeps = {
  readonly locate: (edges: readonly string[]) => RepoLocations;
  readonly apps: AppRegistry;
  readonly strategies: StrategyRegistry;
  readonly log: Logger;
  readonly now?: () => number;
  /** Called after every reconcile with the action taken (tests, `run`'s progress). */
  readonly onAction?: (action: AggregatorAction) => void;
};

export class AggregatorOperator {
  readonly plans: PlanSource;
  private lastWait = '';
  private readonly planRepo: Repository;
  readonly global: Repository;

  constructor(private readonly deps: AggregatorDeps) {
    const where = deps.locate([]);
    this.planRepo = new Repository(where.plan);
    this.global = new Repository(where.global);
    this.plans = new PlanSource(this.planRepo, { apps: deps.apps, strategies: deps.strategies.ids() }, deps.log);
  }

  /** The repositories to watch for the current plan. */
  async watchedGitdirs(): Promise<string[]> {
    const plan = await this.plans.current();
    const where = this.deps.locate(plan?.plan.edges.map((e) => e.name) ?? []);
    return [where.plan, where.global, ...Object.values(where.edges)];
  }

  async observe(): Promise<AggregatorObserved> {
    const plan = await this.plans.current();
    if (!plan) return { plan: null, head: null, finalTag: null, candidates: new Map() };
    const head = await readGlobalHead(this.global, plan);
    const candidates = new Map<string, EdgeRecord | null>();
    if (head) {
      const where = this.deps.locate(plan.plan.edges.map((e) => e.name));
      for (const { name } of plan.plan.edges) candidates.set(name, await this.newestOnBase(where.edges[name], plan, head.oid, name));
    }
    return { plan, head, finalTag: await readFinalTag(this.global, plan), candidates };
  }

  private async newestOnBase(gitdir: string | undefined, plan: CommittedPlan, base: string, edge: string): Promise<EdgeRecord | null> {
    if (!gitdir || !(await Repository.isRepository(gitdir))) return null;
    // Only the last few commits can be on the current head; older ones are stale by construction.
    const history = await readEdgeHistory(new Repository(gitdir), plan, 8);
    return history.find((r) => r.base === base && r.edge === edge) ?? null;
  }

  async reconcile(): Promise<ReconcileOutcome> {
    const observed = await this.observe();
    const action = decideAggregator(observed, (this.deps.now ?? Date.now)());
    await this.act(action, observed);
    this.deps.onAction?.(action);
    return action.kind === 'wait' && action.untilMs !== undefined ? { wakeAtMs: action.untilMs } : undefined;
  }

  private async act(action: AggregatorAction, observed: AggregatorObserved): Promise<void> {
    const plan = observed.plan!;
    const log = this.deps.log;
    switch (action.kind) {
      case 'wait':
        if (action.reason !== this.lastWait) log.info(action.reason);
        this.lastWait = action.reason;
        return;
      case 'init':
        return this.commitRoundZero(plan);
      case 'merge':
        return this.merge(plan, action);
      case 'tag':
        await tagFinal(this.global, plan, action.head.oid);
        log.info(`plan ${plan.plan.name} finished: round ${action.head.round} is ${shortId(action.head.oid)}, tagged inference-${plan.plan.name}-${shortId(plan.id)}`, { commit: action.head.oid });
        return;
      case 'done':
        if (this.lastWait !== 'done') log.info(`plan ${plan.plan.name} is complete`);
        this.lastWait = 'done';
        return;
      default: {
        const never: never = action;
        throw new Error(`unhandled action ${JSON.stringify(never)}`);
      }
    }
  }

  private async commitRoundZero(plan: CommittedPlan): Promise<void> {
    const { app, seed, pretrained } = plan.plan;
    const spec = this.deps.apps.tensorSpec(app.id, app.options);
    let tensors: Tensors;
    let source: string;
    if (pretrained) {
      const commit = await this.global.resolve(pretrained).catch((e) => {
        throw new PlanInvalid(`plan ${plan.plan.name}: pretrained '${pretrained}' is not a commit or ref of the global repository (${(e as Error).message})`, { file: 'plan.yaml', field: 'pretrained' });
      });
      tensors = await readWeights(this.global, commit);
      const problem = updateProblem(tensors, spec, 1);
      if (problem) throw new PlanInvalid(`plan ${plan.plan.name}: pretrained weights ${shortId(commit)} do not fit app ${app.id}: ${problem}`, { file: 'plan.yaml', field: 'pretrained' });
      source = `pretrained ${commit}`;
    } else {
      tensors = await this.deps.apps.initialWeights(app.id, app.options, seed);
      source = `initial weights, seed ${seed}`;
    }
    const oid = await this.commitOrYield(() =>
      commitGlobalRound(this.global, { plan, round: 0, architecture: this.deps.apps.architecture(app.id, app.options), tensors, parent: null, source, metrics: { round: 0, source } }),
    );
    if (oid) this.deps.log.info(`round 0 of ${plan.plan.name} committed: ${shortId(oid)} (${source})`, { round: 0, commit: oid });
  }

  private async merge(plan: CommittedPlan, action: Extract<AggregatorAction, { kind: 'merge' }>): Promise<void> {
    const { app } = plan.plan;
    const spec = this.deps.apps.tensorSpec(app.id, app.options);
    const where = this.deps.locate(plan.plan.edges.map((e) => e.name));
    const strategy = this.deps.strategies.get(plan.plan.strategy);
    const accepted: Update[] = [];
    const acceptedRecords: EdgeRecord[] = [];
    const rejected: Array<{ edge: string; commit: string; reason: string }> = [];
    for (const record of [...action.updates].sort((a, b) => (a.edge < b.edge ? -1 : 1))) {
      let problem: string | null;
      let tensors: Tensors | undefined;
      try {
        tensors = await readWeights(new Repository(where.edges[record.edge]!), record.oid);
        problem = updateProblem(tensors, spec, record.datasetSize);
      } catch (e) {
        problem = isFedgitError(e) ? e.message : `unreadable: ${(e as Error).message}`;
      }
      if (problem || !tensors) {
        rejected.push({ edge: record.edge, commit: record.oid, reason: problem ?? 'unreadable' });
        this.deps.log.warn(`rejected update ${shortId(record.oid)} from ${record.edge}: ${problem}`, { edge: record.edge, commit: record.oid });
        continue;
      }
      accepted.push({ edge: record.edge, datasetSize: record.datasetSize, tensors });
      acceptedRecords.push(record);
    }
    if (accepted.length < plan.plan.minEdges || accepted.length === 0) {
      this.deps.log.error(`round ${action.head.round + 1}: only ${accepted.length} valid updates, ${plan.plan.minEdges} needed; not merging`);
      return;
    }
    const previous = await readWeights(this.global, action.head.oid);
    const started = Date.now();
    const tensors = strategy.aggregate(accepted, previous);
    const weights = strategy.weights(accepted);
    const merged: MergedEntry[] = acceptedRecords.map((r, i) => ({ edge: r.edge, commit: r.oid, datasetSize: r.datasetSize, weight: weights[i]! }));
    const round = action.head.round + 1;
    const metrics = {
      round,
      why: action.why,
      missing: [...action.missing],
      updates: Object.fromEntries(acceptedRecords.map((r) => [r.edge, { commit: r.oid, datasetSize: r.datasetSize, global: r.metricsGlobal, local: r.metricsLocal }])),
    };
    const oid = await this.commitOrYield(() =>
      commitGlobalRound(this.global, { plan, round, architecture: this.deps.apps.architecture(app.id, app.options), tensors, parent: action.head.oid, strategy: strategy.name, merged, rejected, metrics }),
    );
    if (oid) {
      const who = merged.map((m) => `${m.edge}@${shortId(m.commit)}`).join(', ');
      this.deps.log.info(`round ${round}/${plan.plan.rounds} merged: ${shortId(oid)} ← ${who}${action.why === 'deadline' ? ` (deadline passed; missing ${action.missing.join(', ')})` : ''} in ${Date.now() - started} ms`, { round, commit: oid, merged });
    }
  }

  /** Runs a commit; when another aggregator moved the branch first, logs it and lets the next reconcile re-read. */
  private async commitOrYield(commit: () => Promise<string>): Promise<string | null> {
    try {
      return await commit();
    } catch (e) {
      if (isFedgitError(e, 'REF_CONFLICT')) {
        this.deps.log.warn(`the global branch moved while merging (another aggregator?); re-reading: ${e.message}`);
        return null;
      }
      throw e;
    }
  }
}
