/** The aggregator: observe git, decide, act — merges a round when its updates are in. */
import type { KeyObject } from 'node:crypto';
import type { AppRegistry, StrategyRegistry, Tensors, Update } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import type { RepositoryOpener } from '../store/open-repository.js';
import { isFedgitError, PlanInvalid } from '../errors.js';
import { shortId, WEIGHTS_FILE, type MergedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import {
  commitGlobalRound, edgeStatementOf, readEdgeHistory, type Signer, readFinalTag, readGlobalHead, readWeights, tagFinal, type RepoLocations,
} from '../store/federation.js';
import type { EdgeRecord } from '../store/records.js';
import { decideAggregator, type AggregatorAction, type AggregatorObserved } from './aggregator-decide.js';
import { updateProblem } from './validate-update.js';
import type { Logger } from '../runtime/logging.js';
import { sign, verificationFailure } from '../trust/sign.js';
import { parseSafetensors } from '../checkpoint/safetensors.js';
import type { ReconcileOutcome } from '../runtime/reconcile-loop.js';
import { PlanSource } from '../runtime/plan-source.js';

export type AggregatorDeps = {
  readonly locate: (edges: readonly string[]) => RepoLocations;
  readonly open: RepositoryOpener;
  readonly apps: AppRegistry;
  readonly strategies: StrategyRegistry;
  readonly log: Logger;
  /** The aggregator's private signing key, when it has one. */
  readonly key?: KeyObject;
  readonly now?: () => number;
  /** Called after every reconcile with the action taken (tests, `run`'s progress). */
  readonly onAction?: (action: AggregatorAction) => void;
};

export class AggregatorOperator {
  private plans: PlanSource | undefined;
  private lastWait = '';
  private readonly missingEdges = new Set<string>();
  private readonly unreadable = new Set<string>();
  private globalRepo: Repository | undefined;

  constructor(private readonly deps: AggregatorDeps) {}

  /** The global repository (opened on first use). */
  async global(): Promise<Repository> {
    this.globalRepo ??= await this.deps.open.require(this.deps.locate([]).global, 'the global repository');
    return this.globalRepo;
  }

  private async planSource(): Promise<PlanSource> {
    this.plans ??= new PlanSource(await this.deps.open.require(this.deps.locate([]).plan, 'the plan repository'), { apps: this.deps.apps, strategies: this.deps.strategies.ids() }, this.deps.log);
    return this.plans;
  }

  /** The repositories to watch for the current plan. */
  async watchedLocations(): Promise<string[]> {
    const plan = await (await this.planSource()).current();
    const where = this.deps.locate(plan?.plan.edges.map((e) => e.name) ?? []);
    return [where.plan, where.global, ...Object.values(where.edges)];
  }

  private async edgeRepo(plan: CommittedPlan, edge: string): Promise<Repository | null> {
    const location = this.deps.locate(plan.plan.edges.map((e) => e.name)).edges[edge];
    const repo = location ? await this.deps.open.open(location).catch(() => null) : null;
    if (!repo && !this.missingEdges.has(edge)) this.deps.log.warn(`no repository for edge ${edge}${location ? ` at ${location}` : ''}; it counts as not pushed`);
    if (!repo) this.missingEdges.add(edge);
    return repo;
  }

  async observe(): Promise<AggregatorObserved> {
    const plans = await this.planSource();
    await plans.refresh();
    const plan = await plans.current();
    if (!plan) return { plan: null, head: null, finalTag: null, candidates: new Map() };
    const global = await this.global();
    await global.refresh();
    const head = await readGlobalHead(global, plan);
    const candidates = new Map<string, EdgeRecord | null>();
    if (head) {
      for (const { name } of plan.plan.edges) candidates.set(name, await this.newestOnBase(plan, head.oid, name));
    }
    return { plan, head, finalTag: await readFinalTag(global, plan), candidates };
  }

  private async newestOnBase(plan: CommittedPlan, base: string, edge: string): Promise<EdgeRecord | null> {
    const repo = await this.edgeRepo(plan, edge);
    if (!repo) return null;
    try {
      await repo.refresh();
    } catch (e) {
      this.deps.log.warn(`cannot read edge ${edge} (${repo.location}): ${(e as Error).message}`);
    }
    // Only the last few commits can be on the current head; older ones are stale by construction.
    // A broken edge branch (garbage ref, missing or corrupt objects) counts as "not pushed": one edge
    // must never stop the federation.
    try {
      const history = await readEdgeHistory(repo, plan, 8);
      this.unreadable.delete(edge);
      return history.find((r) => r.base === base && r.edge === edge) ?? null;
    } catch (e) {
      if (!this.unreadable.has(edge)) this.deps.log.warn(`edge ${edge}: its branch cannot be read (${(e as Error).message}); it counts as not pushed`, { edge });
      this.unreadable.add(edge);
      return null;
    }
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
        await tagFinal(await this.global(), plan, action.head.oid);
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
    const global = await this.global();
    const spec = this.deps.apps.tensorSpec(app.id, app.options);
    let tensors: Tensors;
    let source: string;
    if (pretrained) {
      const commit = await global.resolve(pretrained).catch((e) => {
        throw new PlanInvalid(`plan ${plan.plan.name}: pretrained '${pretrained}' is not a commit or ref of the global repository (${(e as Error).message})`, { file: 'plan.yaml', field: 'pretrained' });
      });
      tensors = await readWeights(global, commit);
      const problem = updateProblem(tensors, spec, 1);
      if (problem) throw new PlanInvalid(`plan ${plan.plan.name}: pretrained weights ${shortId(commit)} do not fit app ${app.id}: ${problem}`, { file: 'plan.yaml', field: 'pretrained' });
      source = `pretrained ${commit}`;
    } else {
      tensors = await this.deps.apps.initialWeights(app.id, app.options, seed);
      source = `initial weights, seed ${seed}`;
    }
    const oid = await this.commitOrYield(() =>
      commitGlobalRound(global, { plan, round: 0, architecture: this.deps.apps.architecture(app.id, app.options), tensors, parent: null, source, metrics: { round: 0, source }, ...this.signer() }),
    );
    if (oid) this.deps.log.info(`round 0 of ${plan.plan.name} committed: ${shortId(oid)} (${source})`, { round: 0, commit: oid });
  }

  private async merge(plan: CommittedPlan, action: Extract<AggregatorAction, { kind: 'merge' }>): Promise<void> {
    const { app } = plan.plan;
    const spec = this.deps.apps.tensorSpec(app.id, app.options);
    const strategy = this.deps.strategies.get(plan.plan.strategy);
    const accepted: Update[] = [];
    const acceptedRecords: EdgeRecord[] = [];
    const rejected: Array<{ edge: string; commit: string; reason: string }> = [];
    for (const record of [...action.updates].sort((a, b) => (a.edge < b.edge ? -1 : 1))) {
      let problem: string | null;
      let tensors: Tensors | undefined;
      try {
        const repo = await this.edgeRepo(plan, record.edge);
        if (!repo) throw new Error(`edge repository of ${record.edge} is gone`);
        const bytes = await repo.readFile(record.oid, WEIGHTS_FILE);
        problem = signatureProblem(plan, record, bytes);
        if (!problem) {
          tensors = parseSafetensors(bytes, `${WEIGHTS_FILE} of ${record.edge}@${shortId(record.oid)}`).tensors;
          problem = updateProblem(tensors, spec, record.datasetSize);
        }
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
    const global = await this.global();
    const previous = await readWeights(global, action.head.oid);
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
      commitGlobalRound(global, { plan, round, architecture: this.deps.apps.architecture(app.id, app.options), tensors, parent: action.head.oid, strategy: strategy.name, merged, rejected, metrics, ...this.signer() }),
    );
    if (oid) {
      const who = merged.map((m) => `${m.edge}@${shortId(m.commit)}`).join(', ');
      this.deps.log.info(`round ${round}/${plan.plan.rounds} merged: ${shortId(oid)} ← ${who}${action.why === 'deadline' ? ` (deadline passed; missing ${action.missing.join(', ')})` : ''} in ${Date.now() - started} ms`, { round, commit: oid, merged });
    }
  }

  private signer(): { sign?: Signer } {
    const key = this.deps.key;
    return key ? { sign: (statement: string) => sign(statement, key) } : {};
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

/** Why an edge commit's signature is not acceptable under the plan, or null (also null when the plan lists no keys). */
export function signatureProblem(plan: CommittedPlan, record: EdgeRecord, weights: Uint8Array): string | null {
  const publicKey = plan.plan.edges.find((e) => e.name === record.edge)?.publicKey;
  if (!publicKey) return null;
  if (!record.signature) return 'unsigned, but the plan requires signed updates';
  const failure = verificationFailure(edgeStatementOf(record, weights), record.signature, publicKey);
  return failure ? `signature: ${failure}` : null;
}
