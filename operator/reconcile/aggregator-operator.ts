/** The aggregator: observe git, decide, act — merges a round when its updates are in. */
import type { KeyObject } from 'node:crypto';
import { inEdgeOrder, type AppRegistry, type Log, type StrategyRegistry, type TensorSpec, type Tensors, type Update } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import type { RepositoryOpener } from '../store/open-repository.js';
import { PlanInvalid, RefConflict } from '../errors.js';
import { boundReason, planBranch, shortId, type MergedEntry, type RejectedEntry } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import {
  commitGlobalRound, commitRejections, readEdgeHistory, type Signer, readFinalTag, readGlobalHead, readRecordedRejections, readWeights, tagFinal,
  RECENT_EDGE_COMMITS, type RepoLocations,
} from '../store/federation.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';
import { decideAggregator, type AggregatorAction, type AggregatorObserved } from './aggregator-decide.js';
import { maxCheckpointBytes, updateProblem } from './validate-update.js';
import { streamMerge, type UpdateSource } from './merge.js';
import { memoryReleaser } from '../runtime/release-memory.js';
import { WaitLine } from './wait-line.js';
import { loadUpdate, streamUpdate, type CheckedUpdate, type OpenValues } from '../store/load-update.js';
import { readStateAfter } from '../store/strategy-state.js';
import { sign } from '../trust/sign.js';
import type { ReconcileOutcome, Reconciler } from './reconciler.js';
import { PlanSource } from '../runtime/plan-source.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { defaultNoiseSecretFile, readOrCreateNoiseSecret } from '../privacy/noise-secret.js';
import { deriveNoiseSeed, noiseCommitment } from '../privacy/gaussian-noise.js';
import { privacyTrailerValues } from '../privacy/accounting.js';
import { decideSecureAggregator, type SecureAction, type SecureObserved } from '../secagg/secure-decide.js';
import { observeSecure } from '../secagg/aggregator-secure.js';
import { loadMaskedUpdate, type MaskedUpdate } from '../secagg/load-masked.js';
import { computeSecureMerge } from '../secagg/secure-merge.js';
import { revealedSeeds } from '../secagg/reveals.js';
import { commitRecoveryRequest } from '../store/secure-records.js';

/** An edge's newest update on the head that passes every check, and the refused ones above it. */
type EdgeView = { readonly valid: EdgeRecord | null; readonly rejected: readonly RejectedEntry[] };

export type AggregatorDeps = {
  readonly locate: (edges: readonly string[]) => RepoLocations;
  readonly open: RepositoryOpener;
  readonly apps: AppRegistry;
  readonly strategies: StrategyRegistry;
  readonly log: Log;
  /** The aggregator's private signing key, when it has one. */
  readonly key?: KeyObject;
  /** The DP noise secret's file (created, mode 0600, at first use); default: under $XDG_STATE_HOME/fedgit, per global repository. */
  readonly noiseSecretFile?: string;
  readonly now?: () => number;
};

/** Checks of an update are a pure function of the plan and the commit's content, so they are kept (bounded). */
const MAX_REMEMBERED_VERDICTS = 4096;
/**
 * Updates that passed their checks are kept for the merge up to this many bytes in all, so a
 * small model is read once per round; those beyond it are read again when the merge reaches them.
 */
const KEPT_UPDATE_BYTES = 32 * 1024 * 1024;
/** Updates bigger than this are checked a window at a time and never kept. */
const KEPT_UPDATE_MAX_BYTES = 4 * 1024 * 1024;

export class AggregatorOperator implements Reconciler {
  private plans: PlanSource | undefined;
  private readonly waitLine = new WaitLine();
  /** When a wait line held back is to be offered again (a wake-up the reconcile asks for). */
  private waitLineAgainAtMs: number | undefined;
  private saidDone = false;
  private readonly missingEdges = new Set<string>();
  private readonly unreadable = new Set<string>();
  /** `<plan id> <commit>` → why the update is refused, or null when it passed every check. */
  private readonly verdicts = new Map<string, string | null>();
  /** `<plan id> <commit>` → the checked update, for the merge of the round at `keptFor` (a global commit). */
  private readonly kept = new Map<string, Update>();
  private keptBytes = 0;
  private keptFor = '';
  /**
   * Each edge's updates on the head as last worked out, by `<plan> <head> <edge branch tip>`: a
   * reconcile re-reads an edge's history only when its branch moved, so a push costs one edge's
   * work, not every edge's.
   */
  private readonly edgeViews = new Map<string, { readonly key: string; readonly seen: EdgeView }>();
  /**
   * Each edge's branch tip as last read (null: no branch), with the branch: read again only when a
   * reconcile is told the edge's repository moved or is not told what moved, so a push costs one
   * ref read, not one per edge.
   */
  private readonly tips = new Map<string, { readonly branch: string; readonly tip: string | null }>();
  private located: { readonly planId: string; readonly edges: RepoLocations['edges'] } | undefined;
  private globalRepo: Repository | undefined;

  constructor(private readonly deps: AggregatorDeps) {}

  /** The global repository (opened on first use). */
  async global(): Promise<Repository> {
    this.globalRepo ??= await this.deps.open.require(this.deps.locate([]).global, 'the global repository');
    return this.globalRepo;
  }

  /** Opens the global repository; the plan repository is opened by the first reconcile (and retried until it exists). */
  async open(): Promise<void> {
    await this.global();
  }

  /** Nothing runs in the background: every merge happens inside a reconcile. */
  async stop(): Promise<void> {}

  private async planSource(): Promise<PlanSource> {
    this.plans ??= new PlanSource(await this.deps.open.require(this.deps.locate([]).plan, 'the plan repository'), { apps: this.deps.apps, strategies: this.deps.strategies }, this.deps.log);
    return this.plans;
  }

  /** The repositories to watch for the current plan. */
  async watchedLocations(): Promise<readonly string[]> {
    const plan = await (await this.planSource()).current();
    const where = this.deps.locate([]);
    return [where.plan, where.global, ...Object.values(plan ? this.edgeLocations(plan) : {})];
  }

  /** Where each edge's repository is, worked out once per plan (a reconcile asks for every edge). */
  private edgeLocations(plan: CommittedPlan): RepoLocations['edges'] {
    if (this.located?.planId !== plan.id) this.located = { planId: plan.id, edges: this.deps.locate(plan.plan.edges.map((e) => e.name)).edges };
    return this.located.edges;
  }

  private async edgeRepo(plan: CommittedPlan, edge: string): Promise<Repository | null> {
    const location = this.edgeLocations(plan)[edge];
    const repo = location ? await this.deps.open.open(location).catch(() => null) : null;
    if (!repo && !this.missingEdges.has(edge)) this.deps.log.warn(`no repository for edge ${edge}${location ? ` at ${location}` : ''}; it counts as not pushed`);
    if (!repo) this.missingEdges.add(edge);
    return repo;
  }

  /** `moved`: the watched locations that moved since the last observation; undefined: anything may have. */
  async observe(moved?: ReadonlySet<string>): Promise<AggregatorObserved & { secure?: SecureObserved }> {
    const plans = await this.planSource();
    await plans.refresh();
    const plan = await plans.current();
    if (!plan) return { plan: null, head: null, finalTag: null, candidates: new Map(), rejected: [], recorded: [] };
    const global = await this.global();
    await global.refresh();
    const head = await readGlobalHead(global, plan);
    const candidates = new Map<string, EdgeRecord | null>();
    const rejected: RejectedEntry[] = [];
    if (head?.oid !== this.keptFor) this.dropKept(head?.oid ?? '');
    if (head && head.round < plan.plan.rounds) {
      for (const { name } of plan.plan.edges) {
        const seen = this.unmovedView(plan, head, name, moved) ?? (await this.updatesOnHead(plan, head, name, moved));
        candidates.set(name, seen.valid);
        rejected.push(...seen.rejected);
      }
    }
    const recorded = head ? await readRecordedRejections(global, plan, head.oid) : [];
    const secure = plan.plan.secureAggregation && head && head.round < plan.plan.rounds
      ? { secure: await observeSecure(global, plan, head, (edge) => this.edgeRepo(plan, edge), this.deps.log) }
      : {};
    return { plan, head, finalTag: await readFinalTag(global, plan), candidates, rejected, recorded, ...secure };
  }

  /**
   * The edge's newest update on the head that passes every check, and the refused ones above it.
   * A refused update counts as not pushed, so the deadline and minEdges apply to it, and one
   * pushed on top of an honest update cannot shadow it.
   */
  private async updatesOnHead(plan: CommittedPlan, head: GlobalRecord, edge: string, moved: ReadonlySet<string> | undefined): Promise<EdgeView> {
    const none = { valid: null, rejected: [] };
    const repo = await this.edgeRepo(plan, edge);
    if (!repo) return none;
    const tip = await this.tipOf(plan, edge, repo, moved);
    const key = `${plan.id} ${head.oid} ${tip}`;
    const known = this.edgeViews.get(edge);
    if (tip !== undefined && known?.key === key) return known.seen;
    const seen = await this.readUpdatesOnHead(plan, head, edge, repo, tip);
    if (tip !== undefined && seen) this.edgeViews.set(edge, { key, seen });
    return seen ?? none;
  }

  /**
   * The edge's view as last worked out, when its repository did not move and the head is the same:
   * found without a pause, so a reconcile after one push costs the other edges a map lookup each.
   */
  private unmovedView(plan: CommittedPlan, head: GlobalRecord, edge: string, moved: ReadonlySet<string> | undefined): EdgeView | undefined {
    const tip = this.unmovedTip(plan, edge, moved);
    if (!tip) return undefined;
    const known = this.edgeViews.get(edge);
    return known?.key === `${plan.id} ${head.oid} ${tip.tip}` ? known.seen : undefined;
  }

  /** The tip last read, when the reconcile was told what moved and the edge's repository is not among it. */
  private unmovedTip(plan: CommittedPlan, edge: string, moved: ReadonlySet<string> | undefined): { readonly tip: string | null } | undefined {
    const location = this.edgeLocations(plan)[edge];
    const known = this.tips.get(edge);
    if (!moved || location === undefined || moved.has(location) || known?.branch !== planBranch(plan.plan.name, plan.id)) return undefined;
    return known;
  }

  /** The tip of the edge's branch (null: none), or undefined when it cannot be read (then not remembered). */
  private async tipOf(plan: CommittedPlan, edge: string, repo: Repository, moved: ReadonlySet<string> | undefined): Promise<string | null | undefined> {
    const unmoved = this.unmovedTip(plan, edge, moved);
    if (unmoved) return unmoved.tip;
    const branch = planBranch(plan.plan.name, plan.id);
    try {
      await repo.refresh();
    } catch (e) {
      this.deps.log.warn(`cannot read edge ${edge} (${repo.location}): ${(e as Error).message}`);
    }
    const tip = await repo.readRef(branch).catch(() => undefined);
    if (tip === undefined) this.tips.delete(edge);
    else this.tips.set(edge, { branch, tip });
    return tip;
  }

  /** The edge's updates on the head, or null when its branch cannot be read (then not remembered: its objects may yet arrive). */
  private async readUpdatesOnHead(plan: CommittedPlan, head: GlobalRecord, edge: string, repo: Repository, tip: string | null | undefined): Promise<EdgeView | null> {
    let history: EdgeRecord[];
    // A broken edge branch (garbage ref, missing or corrupt objects) counts as "not pushed":
    // one edge must never stop the federation.
    try {
      history = await readEdgeHistory(repo, plan, RECENT_EDGE_COMMITS, tip);
      this.unreadable.delete(edge);
    } catch (e) {
      if (!this.unreadable.has(edge)) this.deps.log.warn(`edge ${edge}: its branch cannot be read (${escapeUntrusted((e as Error).message)}); it counts as not pushed`, { edge });
      this.unreadable.add(edge);
      return null;
    }
    const rejected: RejectedEntry[] = [];
    for (const record of history.filter((r) => r.base === head.oid && r.edge === edge && r.round === head.round + 1)) {
      const reason = await this.verdict(plan, repo, record);
      if (reason === null) return { valid: record, rejected };
      rejected.push({ edge, commit: record.oid, reason });
    }
    return { valid: null, rejected };
  }

  private async verdict(plan: CommittedPlan, repo: Repository, record: EdgeRecord): Promise<string | null> {
    const key = `${plan.id} ${record.oid}`;
    const known = this.verdicts.get(key);
    if (known !== undefined) return known;
    const spec = this.deps.apps.tensorSpec(plan.plan.app.id, plan.plan.app.options);
    const checked = await this.check(plan, repo, record, spec);
    const reason = checked.ok ? null : boundReason(checked.reason);
    if (this.verdicts.size >= MAX_REMEMBERED_VERDICTS) this.verdicts.clear();
    this.verdicts.set(key, reason);
    return reason;
  }

  /** Every check of the update: a small one read whole and kept for the merge, a big one streamed through the checks. */
  private async check(plan: CommittedPlan, repo: Repository, record: EdgeRecord, spec: readonly TensorSpec[]): Promise<CheckedUpdate> {
    if (plan.plan.secureAggregation) return loadMaskedUpdate(repo, plan, record, spec);
    if (maxCheckpointBytes(spec) > KEPT_UPDATE_MAX_BYTES) return streamUpdate(repo, plan, record, spec);
    const loaded = await loadUpdate(repo, plan, record, spec);
    if (loaded.ok) this.keep(`${plan.id} ${record.oid}`, loaded.update);
    return loaded;
  }

  private keep(key: string, update: Update): void {
    const bytes = tensorBytes(update.tensors);
    if (this.keptBytes + bytes > KEPT_UPDATE_BYTES) return;
    this.kept.set(key, update);
    this.keptBytes += bytes;
  }

  /** Forgets the kept updates (the head moved, or the merge took them). */
  private dropKept(head: string): void {
    this.kept.clear();
    this.keptBytes = 0;
    this.keptFor = head;
  }

  async reconcile(moved?: ReadonlySet<string>): Promise<ReconcileOutcome> {
    const observed = await this.observe(moved);
    const now = (this.deps.now ?? Date.now)();
    const action = observed.secure ? decideSecureAggregator(observed, observed.secure, now) : decideAggregator(observed, now);
    this.waitLineAgainAtMs = undefined;
    const changed = await this.act(action, observed, now);
    // After a change, look again at once (a participant is not told of its own pushes to a
    // server); a wait asks for nothing but a wake-up at the deadline (or to log a wait line held back).
    if (changed) {
      this.waitLine.ended();
      return { lookAgain: true };
    }
    if (action.kind === 'done') return { done: true };
    if (action.kind !== 'wait') return undefined;
    const wakes = [action.untilMs, this.waitLineAgainAtMs].filter((ms): ms is number => ms !== undefined);
    return wakes.length > 0 ? { wakeAtMs: Math.min(...wakes) } : undefined;
  }

  /** Carries out the action; true when git changed (by this write, or by another writer that got there first). */
  private async act(action: SecureAction, observed: AggregatorObserved, now: number): Promise<boolean> {
    const plan = observed.plan!;
    const log = this.deps.log;
    switch (action.kind) {
      case 'wait': {
        const offer = this.waitLine.offer(action.reason, now);
        if (offer.say) log.info(action.reason);
        this.waitLineAgainAtMs = offer.againAtMs;
        this.saidDone = false;
        return false;
      }
      case 'init':
        return this.commitRoundZero(plan);
      case 'record-rejections':
        return this.recordRejections(plan, action);
      case 'merge':
        return plan.plan.secureAggregation ? this.secureMerge(plan, action) : this.merge(plan, action);
      case 'request-recovery':
        return this.requestRecovery(plan, action);
      case 'tag':
        await tagFinal(await this.global(), plan, action.head.oid);
        if (action.budget) log.info(action.budget, { round: action.head.round, commit: action.head.oid });
        log.info(`plan ${plan.plan.name} finished${action.budget ? ' (privacy budget)' : ''}: round ${action.head.round} is ${shortId(action.head.oid)}, tagged inference-${plan.plan.name}-${shortId(plan.id)}`, { commit: action.head.oid });
        return true;
      case 'done':
        if (!this.saidDone) log.info(`plan ${plan.plan.name} is complete`);
        this.saidDone = true;
        return false;
      default: {
        const never: never = action;
        throw new Error(`unhandled action ${JSON.stringify(never)}`);
      }
    }
  }

  private async commitRoundZero(plan: CommittedPlan): Promise<boolean> {
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
    return true;
  }

  private async recordRejections(plan: CommittedPlan, action: Extract<AggregatorAction, { kind: 'record-rejections' }>): Promise<boolean> {
    const round = action.head.round + 1;
    const oid = await this.commitOrYield(async () => commitRejections(await this.global(), { plan, base: action.head.oid, round, entries: action.entries }));
    if (!oid) return true;
    for (const r of action.entries) {
      this.deps.log.warn(`round ${round}: refused update ${shortId(r.commit)} from ${r.edge}: ${r.reason}`, { round, edge: r.edge, commit: r.commit });
    }
    return true;
  }

  /** Reads the accepted updates again (every check included), merges them and commits the next round. */
  private async merge(plan: CommittedPlan, action: Extract<AggregatorAction, { kind: 'merge' }>): Promise<boolean> {
    const { app } = plan.plan;
    const records = inEdgeOrder(action.updates);
    const global = await this.global();
    const started = Date.now();
    const strategy = this.deps.strategies.get(plan.plan.strategy, plan.plan.strategyOptions);
    const state = strategy.step || strategy.average?.kind === 'step' ? await readStateAfter(global, action.head) : null;
    const round = action.head.round + 1;
    const seed = plan.plan.privacy ? deriveNoiseSeed(await this.noiseSecret(), plan.id, round) : null;
    const merge = await streamMerge(plan.plan, strategy, this.acceptedSources(plan, records), () => readWeights(global, action.head.oid), { state, noiseSeed: seed, released: memoryReleaser() });
    if (!merge) return true;
    const { weights, tensors, state: next, clipped } = merge;
    const privacy = plan.plan.privacy && seed ? { ...privacyTrailerValues(plan.plan.privacy, round), noiseCommitment: noiseCommitment(seed) } : undefined;
    const merged: MergedEntry[] = records.map((r, i) => ({ edge: r.edge, commit: r.oid, datasetSize: r.datasetSize, weight: weights[i]! }));
    const clipNorm = plan.plan.privacy?.clipNorm ?? plan.plan.clip?.maxNorm;
    const metrics = {
      round,
      why: action.why,
      missing: [...action.missing],
      updates: Object.fromEntries(records.map((r) => [r.edge, { commit: r.oid, datasetSize: r.datasetSize, global: r.metricsGlobal, local: r.metricsLocal }])),
      rejected: action.rejected.map((r) => ({ ...r })),
      ...(clipNorm !== undefined ? { clip: { maxNorm: clipNorm, clipped: Object.fromEntries(clipped.map((c) => [c.edge, { norm: c.norm }])) } } : {}),
      ...(privacy ? { privacy: { epsilon: privacy.epsilon, delta: privacy.delta, accountant: privacy.accountant } } : {}),
    };
    const oid = await this.commitOrYield(() =>
      commitGlobalRound(global, { plan, round, architecture: this.deps.apps.architecture(app.id, app.options), tensors, parent: action.head.oid, strategy: strategy.name, merged, clipped, rejected: action.rejected, metrics, ...(next ? { state: next } : {}), ...(privacy ? { privacy } : {}), ...this.signer() }),
    );
    if (oid) {
      const who = merged.map((m) => `${m.edge}@${shortId(m.commit)}`).join(', ');
      this.deps.log.info(`round ${round}/${plan.plan.rounds} merged: ${shortId(oid)} ← ${who}${action.why === 'deadline' ? ` (deadline passed; missing ${action.missing.join(', ')})` : ''}${clipped.length ? ` (clipped to norm ${clipNorm}: ${clipped.map((c) => `${c.edge} from ${c.norm.toPrecision(4)}`).join(', ')})` : ''}${privacy ? ` (DP: ε ≤ ${privacy.epsilon} at δ ${privacy.delta} spent so far)` : ''} in ${Date.now() - started} ms`, { round, commit: oid, merged });
    }
    return true;
  }

  /** Secure aggregation: the deadline passed with edges missing; the survivors are asked for the seeds they share with them. */
  private async requestRecovery(plan: CommittedPlan, action: Extract<SecureAction, { kind: 'request-recovery' }>): Promise<boolean> {
    const round = action.head.round + 1;
    const survivors = inEdgeOrder(action.survivors).map((r) => ({ edge: r.edge, commit: r.oid }));
    const oid = await this.commitOrYield(async () => commitRecoveryRequest(await this.global(), { plan, base: action.head.oid, round, dropped: action.dropped, survivors, ...this.signer() }));
    if (oid) this.deps.log.warn(`round ${round}: deadline passed without ${action.dropped.join(', ')}; recovery ${shortId(oid)} asks ${survivors.map((s) => s.edge).join(', ')} for the seeds they share with ${action.dropped.length === 1 ? 'it' : 'them'}`, { round, commit: oid });
    return true;
  }

  /** Secure aggregation: sums the survivors' masked updates, removes dropped edges' masks with the revealed seeds, commits the next round. */
  private async secureMerge(plan: CommittedPlan, action: Extract<AggregatorAction, { kind: 'merge' }>): Promise<boolean> {
    const records = inEdgeOrder(action.updates);
    const updates = await this.loadMasked(plan, records);
    if (!updates) return true;
    const global = await this.global();
    const started = Date.now();
    const strategy = this.deps.strategies.get(plan.plan.strategy, plan.plan.strategyOptions);
    const state = strategy.step ? await readStateAfter(global, action.head) : null;
    const round = action.head.round + 1;
    const seeds = revealedSeeds(action.recovery?.reveals ?? []);
    const { weights, tensors, state: next } = computeSecureMerge(plan.plan, strategy, updates, seeds, await readWeights(global, action.head.oid), state);
    const merged: MergedEntry[] = records.map((r, i) => ({ edge: r.edge, commit: r.oid, datasetSize: r.datasetSize, weight: weights[i]! }));
    const recovery = action.recovery ? { request: action.recovery.request.oid, reveals: inEdgeOrder(action.recovery.reveals).map((r) => ({ edge: r.edge, commit: r.oid })) } : undefined;
    const metrics = {
      round, why: action.why, missing: [...action.missing],
      updates: Object.fromEntries(records.map((r) => [r.edge, { commit: r.oid, datasetSize: r.datasetSize, global: r.metricsGlobal, local: r.metricsLocal }])),
      rejected: action.rejected.map((r) => ({ ...r })),
      secureAggregation: { fractionalBits: plan.plan.secureAggregation!.fractionalBits, ...(recovery ? { recovery: recovery.request, dropped: [...action.missing] } : {}) },
    };
    const oid = await this.commitOrYield(() =>
      commitGlobalRound(global, { plan, round, architecture: this.deps.apps.architecture(plan.plan.app.id, plan.plan.app.options), tensors, parent: action.head.oid, strategy: strategy.name, merged, rejected: action.rejected, metrics, ...(next ? { state: next } : {}), ...(recovery ? { recovery } : {}), ...this.signer() }),
    );
    if (oid) this.deps.log.info(`round ${round}/${plan.plan.rounds} merged securely: ${shortId(oid)} ← ${merged.map((m) => `${m.edge}@${shortId(m.commit)}`).join(', ')}${recovery ? ` (recovered without ${action.missing.join(', ')})` : ''} in ${Date.now() - started} ms`, { round, commit: oid, merged });
    return true;
  }

  /** The masked updates of `records`, or null when one no longer loads (then refused, and the next reconcile looks again). */
  private async loadMasked(plan: CommittedPlan, records: readonly EdgeRecord[]): Promise<MaskedUpdate[] | null> {
    const spec = this.deps.apps.tensorSpec(plan.plan.app.id, plan.plan.app.options);
    const updates: MaskedUpdate[] = [];
    for (const record of records) {
      const repo = await this.edgeRepo(plan, record.edge);
      const loaded = repo ? await loadMaskedUpdate(repo, plan, record, spec) : { ok: false as const, reason: `the repository of ${record.edge} is gone` };
      if (!loaded.ok) {
        this.refuseLater(plan, record, loaded.reason);
        return null;
      }
      updates.push(loaded.update);
    }
    return updates;
  }

  /**
   * The updates of `records`: the ones kept from their check, the others read (every check
   * included) only when the merge reaches them: whole, or a window at a time into the merge's
   * sums. One that no longer loads was checked a moment ago and is content-addressed, so only its
   * storage can have changed: it is refused, the merge abandoned, and the next reconcile looks again.
   */
  private acceptedSources(plan: CommittedPlan, records: readonly EdgeRecord[]): UpdateSource[] {
    const spec = this.deps.apps.tensorSpec(plan.plan.app.id, plan.plan.app.options);
    const gone = (record: EdgeRecord) => ({ ok: false as const, reason: `the repository of ${record.edge} is gone` });
    const kept = new Map(this.kept);
    this.dropKept(this.keptFor);
    return records.map((record) => {
      const checked = kept.get(`${plan.id} ${record.oid}`);
      if (checked) return { edge: record.edge, datasetSize: record.datasetSize, load: async () => checked };
      return {
        edge: record.edge,
        datasetSize: record.datasetSize,
        load: async () => {
          const repo = await this.edgeRepo(plan, record.edge);
          const loaded = repo ? await loadUpdate(repo, plan, record, spec) : gone(record);
          if (loaded.ok) return loaded.update;
          this.refuseLater(plan, record, loaded.reason);
          return null;
        },
        stream: async (into: OpenValues) => {
          const repo = await this.edgeRepo(plan, record.edge);
          const streamed = repo ? await streamUpdate(repo, plan, record, spec, into) : gone(record);
          if (!streamed.ok) this.refuseLater(plan, record, streamed.reason);
          return streamed.ok;
        },
      };
    });
  }

  /** An update that passed its checks no longer loads at the merge: refused from now on, and every edge looked at afresh. */
  private refuseLater(plan: CommittedPlan, record: EdgeRecord, reason: string): void {
    this.verdicts.set(`${plan.id} ${record.oid}`, boundReason(reason));
    this.edgeViews.clear();
  }

  private noiseSecretBytes: Buffer | undefined;

  /** The DP noise secret (read once); only seeds derived from it leave this object. */
  private async noiseSecret(): Promise<Buffer> {
    this.noiseSecretBytes ??= await readOrCreateNoiseSecret(this.deps.noiseSecretFile ?? defaultNoiseSecretFile(this.deps.locate([]).global));
    return this.noiseSecretBytes;
  }

  private signer(): { sign?: Signer } {
    const key = this.deps.key;
    return key ? { sign: (statement: string) => sign(statement, key) } : {};
  }

  /**
   * Runs a commit; when another writer moved the ref first (a real compare-and-swap conflict),
   * logs it and lets the next reconcile re-read. Any other failure (a server that refuses the
   * push, an unreachable server) propagates with its own cause.
   */
  private async commitOrYield(commit: () => Promise<string>): Promise<string | null> {
    try {
      return await commit();
    } catch (e) {
      if (e instanceof RefConflict) {
        this.deps.log.warn(`the ref moved while writing (another aggregator?); re-reading: ${e.message}`);
        return null;
      }
      throw e;
    }
  }
}

function tensorBytes(tensors: Tensors): number {
  let bytes = 0;
  for (const { data } of tensors.values()) bytes += data.byteLength;
  return bytes;
}
