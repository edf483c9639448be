/**
 * An edge: observe git, decide, act — trains one round whenever the global
 * model advances and pushes its local model. Training runs in the background
 * so that every reconcile can see the global head move and stop it.
 */
import path from 'node:path';
import type { AppRegistry, EdgeApp, Engine, Log, Progress, StrategyRegistry, Tensors } from '../contracts.js';
import type { Repository } from '../git/repository.js';
import type { RepositoryOpener } from '../store/open-repository.js';
import { Aborted, FedgitError, NotFound } from '../errors.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { shortId, TRAILER } from '../git/names.js';
import { isLfsTransportFailure } from '../remote/lfs-client.js';
import type { CommittedPlan } from '../plan/plan.js';
import {
  commitEdgeUpdate, readEdgeHistory, readFinalTag, readGlobalHead, readRecordedRejections, readWeights, RECENT_EDGE_COMMITS, type RepoLocations,
} from '../store/federation.js';
import type { EdgeRecord, GlobalRecord } from '../store/records.js';
import type { RecoveryRequest } from '../store/secure-records.js';
import { PushJournal } from '../store/push-journal.js';
import { signatureProblemOfCommit } from '../store/load-update.js';
import { decideEdge, type EdgeAction, type EdgeObserved } from './edge-decide.js';
import { maxCheckpointBytes, updateProblem } from './validate-update.js';
import type { KeyObject } from 'node:crypto';
import { sign } from '../trust/sign.js';
import { fingerprint, publicKeyOf } from '../trust/keys.js';
import type { ReconcileOutcome, Reconciler } from './reconciler.js';
import { PlanSource } from '../runtime/plan-source.js';
import { proximalMuOf, proximalTermProblem } from './proximal-term.js';
import { agreementKeyProblem, decideSecureEdge, maskForPush, seedsToReveal, type SecureEdgeObserved } from '../secagg/edge-secure.js';
import { trustedRecoveryRequest } from '../secagg/aggregator-secure.js';
import { commitReveal, hasRevealedInRound } from '../store/secure-records.js';

export type EdgeDeps = {
  readonly edge: string;
  readonly locate: (edges: readonly string[]) => RepoLocations;
  readonly open: RepositoryOpener;
  readonly apps: AppRegistry;
  readonly strategies: StrategyRegistry;
  readonly engine: Engine;
  readonly dataDir: string | undefined;
  readonly log: Log;
  /** The edge's private signing key, when it has one. */
  readonly key?: KeyObject;
  /** The edge's X25519 key for secure aggregation's pairwise masks, when it has one. */
  readonly agreementKey?: KeyObject;
  /** This participant's own folder (never in git): its push journal lives there. */
  readonly stateDir?: string;
  /** Asks for another reconcile (training finished or failed). */
  readonly trigger: () => void;
};

type Training = { planId: string; base: string; round: number; controller: AbortController; done: Promise<void> };
const RETRY_BASE_MS = 2_000;

type EdgeRepos = { plans: PlanSource; global: Repository; own: Repository };

export class EdgeOperator implements Reconciler {
  private repos: EdgeRepos | undefined;
  private training: Training | null = null;
  private app: { planId: string; app: EdgeApp } | null = null;
  private failure: { base: string; count: number; retryAtMs: number } | null = null;
  private lastWait = '';
  /** Set when training met an error whose class is fatal: the next reconcile reports it. */
  private fatalError: Error | null = null;
  /** A plan this edge's app cannot train (FedProx without a proximal term): it waits for the next plan. */
  private refusedPlan: { planId: string; reason: string } | null = null;
  private readonly journal: PushJournal;
  /** Commits on this edge's branch already judged: pushed by this edge, or not. */
  private readonly ownership = new Map<string, boolean>();

  constructor(private readonly deps: EdgeDeps) {
    this.journal = new PushJournal(deps.stateDir ? path.join(deps.stateDir, 'pushed-updates.log') : undefined);
  }

  async open(): Promise<void> {
    await this.repositories();
  }

  /** The plan, global and own repositories (opened on first use); fails with NotFound naming the missing one. */
  private async repositories(): Promise<EdgeRepos> {
    if (this.repos) return this.repos;
    const where = this.deps.locate([this.deps.edge]);
    const ownLocation = where.edges[this.deps.edge];
    if (!ownLocation) throw new NotFound(`edge ${this.deps.edge}: no location for its own repository`, { edge: this.deps.edge });
    const [planRepo, global, own] = [
      await this.deps.open.require(where.plan, 'the plan repository'),
      await this.deps.open.require(where.global, 'the global repository'),
      await this.deps.open.require(ownLocation, `the repository of edge ${this.deps.edge}`),
    ];
    this.repos = { plans: new PlanSource(planRepo, { apps: this.deps.apps, strategies: this.deps.strategies }, this.deps.log), global, own };
    return this.repos;
  }

  async watchedLocations(): Promise<readonly string[]> {
    const where = this.deps.locate([this.deps.edge]);
    return [where.plan, where.global, where.edges[this.deps.edge]!];
  }

  async observe(): Promise<EdgeObserved> {
    const { plans, global, own } = await this.repositories();
    await plans.refresh();
    const plan = await plans.current();
    const training = this.training ? { planId: this.training.planId, base: this.training.base } : null;
    if (!plan) return { edge: this.deps.edge, plan, globalHead: null, finalTag: null, own: [], refused: [], training };
    await global.refresh();
    await own.refresh();
    const globalHead = await readGlobalHead(global, plan);
    const refused = globalHead ? (await readRecordedRejections(global, plan, globalHead.oid)).filter((r) => r.edge === this.deps.edge) : [];
    return {
      edge: this.deps.edge,
      plan,
      globalHead,
      finalTag: await readFinalTag(global, plan),
      own: await this.provablyOwn(plan, own, await readEdgeHistory(own, plan, RECENT_EDGE_COMMITS)),
      refused,
      training,
    };
  }

  /**
   * The commits this edge can prove it pushed: signed with its key in a signed plan, else listed
   * in its push journal. A commit someone else placed on its branch (or a participant config
   * pointing it at another edge's repository) must not make it wait for a merge that never comes.
   */
  private async provablyOwn(plan: CommittedPlan, repo: Repository, history: readonly EdgeRecord[]): Promise<EdgeRecord[]> {
    const own: EdgeRecord[] = [];
    for (const record of history) {
      let mine = this.ownership.get(record.oid);
      if (mine === undefined) {
        const notMine = await this.whyNotPushedByThisEdge(plan, repo, record);
        mine = notMine === null;
        this.ownership.set(record.oid, mine);
        if (notMine) this.deps.log.warn(`commit ${shortId(record.oid)} on this edge's branch was not pushed by ${this.deps.edge} (${escapeUntrusted(notMine, 1000)}); it is not counted as this edge's update`, { commit: record.oid });
      }
      if (mine) own.push(record);
    }
    return own;
  }

  private signedPlan(plan: CommittedPlan): boolean {
    return plan.plan.edges.some((e) => e.name === this.deps.edge && e.publicKey);
  }

  /** Why this edge cannot prove it pushed the commit (see provablyOwn), or null when it can. */
  private async whyNotPushedByThisEdge(plan: CommittedPlan, repo: Repository, record: EdgeRecord): Promise<string | null> {
    if (record.edge !== this.deps.edge) return `its ${TRAILER.edge} trailer names another edge`;
    if (!this.signedPlan(plan)) return (await this.journal.has(plan.id, record.oid)) ? null : 'not in its push journal';
    try {
      const spec = this.deps.apps.tensorSpec(plan.plan.app.id, plan.plan.app.options);
      return await signatureProblemOfCommit(repo, plan, record, { maxBytes: (plan.plan.secureAggregation ? 2 : 1) * maxCheckpointBytes(spec) });
    } catch (e) {
      if (isLfsTransportFailure(e)) throw e;
      if (e instanceof FedgitError) return `its signature cannot be checked: ${e.message}`;
      throw e;
    }
  }

  async reconcile(): Promise<ReconcileOutcome> {
    if (this.fatalError) return { fatal: this.fatalError };
    const observed = await this.observe();
    const secure = await this.observeSecure(observed);
    const duty = secure ? decideSecureEdge(secure) : null;
    if (duty?.kind === 'reveal') return this.reveal(observed.plan!, duty.request);
    if (duty?.kind === 'sit-out') {
      if (this.training) return this.act({ kind: 'abort', reason: duty.reason }, observed);
      this.note(duty.reason);
      return;
    }
    return this.act(decideEdge(observed), observed);
  }

  /** Secure aggregation: the head's recovery request and whether this edge already revealed in its round. */
  private async observeSecure(o: EdgeObserved): Promise<SecureEdgeObserved | null> {
    if (!o.plan?.plan.secureAggregation || !o.globalHead || o.finalTag) return null;
    const { global, own } = await this.repositories();
    const request = await trustedRecoveryRequest(global, o.plan, o.globalHead.oid);
    const revealedThisRound = request ? await hasRevealedInRound(own, o.plan, request.round) : false;
    return { edge: this.deps.edge, request, revealedThisRound, own: o.own };
  }

  /** Pushes the seeds this edge shares with the dropped edges (only those), once for the round. */
  private async reveal(plan: CommittedPlan, request: RecoveryRequest): Promise<ReconcileOutcome> {
    const problem = agreementKeyProblem(plan, this.deps.edge, this.deps.agreementKey);
    if (problem) {
      this.note(problem);
      return;
    }
    const { own } = await this.repositories();
    const seeds = seedsToReveal(plan, this.deps.agreementKey!, this.deps.edge, request);
    const oid = await commitReveal(own, { plan, edge: this.deps.edge, round: request.round, request: request.oid, seeds, ...(this.deps.key ? { sign: (statement: string) => sign(statement, this.deps.key!) } : {}) });
    this.deps.log.warn(`round ${request.round}: revealed ${shortId(oid)}: the seeds shared with ${request.dropped.join(', ')} only, for recovery ${shortId(request.oid)}; nothing more will be revealed this round`, { round: request.round, commit: oid });
    return { lookAgain: true };
  }

  private note(reason: string): void {
    if (reason !== this.lastWait) this.deps.log.info(reason);
    this.lastWait = reason;
  }

  private async act(action: EdgeAction, observed: EdgeObserved): Promise<ReconcileOutcome> {
    switch (action.kind) {
      case 'wait':
        this.note(action.reason);
        return;
      case 'keep-training':
        return;
      case 'abort':
        this.deps.log.info(`stopping training of round ${this.training?.round}: ${action.reason}`);
        this.training?.controller.abort();
        await this.training?.done;
        return { lookAgain: true };
      case 'done':
        this.note(`plan ${observed.plan!.plan.name} is complete at round ${action.head.round} (${shortId(action.head.oid)})`);
        await this.closeApp();
        return { done: true };
      case 'train': {
        const keyProblem = this.keyProblem(observed.plan!);
        if (keyProblem) {
          this.note(keyProblem);
          return;
        }
        if (this.refusedPlan?.planId === observed.plan!.id) {
          this.note(this.refusedPlan.reason);
          return;
        }
        if (this.failure && this.failure.base === action.base.oid && Date.now() < this.failure.retryAtMs) return { wakeAtMs: this.failure.retryAtMs };
        this.startTraining(observed.plan!, action.base, action.round);
        return;
      }
      default: {
        const never: never = action;
        throw new Error(`unhandled action ${JSON.stringify(never)}`);
      }
    }
  }

  /** Why this edge cannot sign what the plan requires, or null. */
  private keyProblem(plan: CommittedPlan): string | null {
    const agreement = agreementKeyProblem(plan, this.deps.edge, this.deps.agreementKey);
    if (agreement) return agreement;
    const listed = plan.plan.edges.find((e) => e.name === this.deps.edge)?.publicKey;
    if (!listed) return null;
    if (!this.deps.key) return `plan ${plan.plan.name} requires signed updates but this edge has no key (participant config 'key'); not training`;
    if (publicKeyOf(this.deps.key) !== listed) return `this edge's key (${fingerprint(publicKeyOf(this.deps.key))}) is not the one plan ${plan.plan.name} lists for ${this.deps.edge} (${fingerprint(listed)}); not training`;
    return null;
  }

  private async appFor(plan: CommittedPlan): Promise<EdgeApp> {
    if (this.app?.planId === plan.id) return this.app.app;
    await this.closeApp();
    const app = await this.deps.apps.createEdgeApp(plan.plan.app.id, plan.plan.app.options, {
      edge: this.deps.edge,
      engine: this.deps.engine,
      ...(this.deps.dataDir ? { dataDir: this.deps.dataDir } : {}),
      log: this.deps.log,
    });
    this.app = { planId: plan.id, app };
    return app;
  }

  private async closeApp(): Promise<void> {
    const current = this.app;
    this.app = null;
    await current?.app.close();
  }

  /** Trains one round in the background; when it ends (pushed, discarded, failed), it asks for another reconcile. */
  private startTraining(plan: CommittedPlan, base: GlobalRecord, round: number): void {
    const controller = new AbortController();
    this.lastWait = '';
    const done = this.trainAndPush(plan, base, round, controller.signal)
      .catch((e) => this.trainingFailed(e, base, round, controller.signal))
      .finally(() => {
        if (this.training?.controller === controller) this.training = null;
        this.deps.trigger();
      });
    this.training = { planId: plan.id, base: base.oid, round, controller, done };
  }

  private async trainAndPush(plan: CommittedPlan, base: GlobalRecord, round: number, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    const log = this.deps.log;
    log.info(`round ${round}/${plan.plan.rounds}: training ${plan.plan.epochsPerRound} epoch(s) from ${shortId(base.oid)}`, { round, base: base.oid });
    const { global, own } = await this.repositories();
    const app = await this.appFor(plan);
    const proximalMu = proximalMuOf(plan.plan, this.deps.strategies);
    const refusal = proximalTermProblem(plan.plan, proximalMu, app);
    if (refusal) {
      log.error(refusal);
      this.refusedPlan = { planId: plan.id, reason: refusal };
      this.lastWait = refusal;
      return;
    }
    const result = await app.train({
      weights: await readWeights(global, base.oid),
      epochs: plan.plan.epochsPerRound,
      round,
      planId: plan.id,
      seed: (plan.plan.seed + round * 7919) >>> 0,
      signal,
      onProgress: this.progressLog(round),
      ...(proximalMu > 0 ? { proximalMu } : {}),
    });
    if (signal.aborted) return;
    const problem = updateProblem(result.weights, this.deps.apps.tensorSpec(plan.plan.app.id, plan.plan.app.options), result.datasetSize);
    if (problem) throw new Error(`the app produced an unusable model: ${problem}`);
    await global.refresh();
    const head = await readGlobalHead(global, plan);
    if (head?.oid !== base.oid) {
      log.info(`round ${round}: the global model moved to ${head ? shortId(head.oid) : 'nothing'} while training; discarding this update`);
      return;
    }
    const masked = await this.maskIfSecure(plan, base, round, result.weights, result.datasetSize);
    if (masked === 'sit-out') return;
    const oid = await commitEdgeUpdate(own, {
      plan, edge: this.deps.edge, round, base: base.oid, architecture: app.architecture,
      tensors: result.weights, datasetSize: result.datasetSize, metrics: result.metrics, ...(masked ? { masked } : {}),
      ...(this.deps.key ? { sign: (statement: string) => sign(statement, this.deps.key!) } : {}),
      beforeRefMoves: (commit) => this.journal.add(plan.id, commit),
      startedMs: started,
    });
    this.ownership.set(oid, true);
    this.failure = null;
    log.info(`round ${round}: pushed ${shortId(oid)} (${result.datasetSize} samples, ${((Date.now() - started) / 1000).toFixed(1)} s)`, { round, commit: oid, metrics: result.metrics });
  }

  /**
   * Secure aggregation: the masked update to push instead of the model (null: the plan is not
   * secure), or 'sit-out' when a recovery already dropped this edge from the round — then its
   * update must never be pushed: the survivors' revealed seeds would unmask it.
   */
  private async maskIfSecure(plan: CommittedPlan, base: GlobalRecord, round: number, tensors: Tensors, datasetSize: number) {
    if (!plan.plan.secureAggregation) return null;
    const { global } = await this.repositories();
    const request = await trustedRecoveryRequest(global, plan, base.oid);
    if (request?.dropped.includes(this.deps.edge)) {
      this.deps.log.warn(`round ${round}: the round was recovered without this edge while it trained; discarding its update unpushed`, { round });
      return 'sit-out' as const;
    }
    const masked = maskForPush(plan, this.deps.agreementKey!, { edge: this.deps.edge, round, tensors, previous: await readWeights(global, base.oid), datasetSize });
    if (masked.entry.clipped > 0) this.deps.log.warn(`round ${round}: ${masked.entry.clipped} value(s) of the weighted update exceeded the fixed-point bound and were clipped (recorded in the commit)`, { round });
    return masked;
  }

  /** Progress lines at most every 2 s (and the last one). */
  private progressLog(round: number): Progress {
    let lastProgress = 0;
    return (message, fraction) => {
      if (Date.now() - lastProgress < 2_000 && fraction !== 1) return;
      lastProgress = Date.now();
      this.deps.log.info(`round ${round}: ${message}${fraction !== undefined ? ` (${Math.round(fraction * 100)}%)` : ''}`, { round, fraction });
    };
  }

  /** A stop is not a failure; a fatal error is reported by the next reconcile; anything else is retried with back-off. */
  private trainingFailed(e: unknown, base: GlobalRecord, round: number, signal: AbortSignal): void {
    const log = this.deps.log;
    if (signal.aborted || e instanceof Aborted) {
      log.info(`round ${round}: training stopped`);
      return;
    }
    // The app says this edge cannot work as configured (its config or data must change): stop.
    if (e instanceof FedgitError && e.fatal) {
      log.error(`cannot train: ${e.message}`);
      this.fatalError = e;
      return;
    }
    const count = this.failure?.base === base.oid ? this.failure.count + 1 : 1;
    const delay = Math.min(60_000, RETRY_BASE_MS * 2 ** (count - 1));
    this.failure = { base: base.oid, count, retryAtMs: Date.now() + delay };
    log.error(`round ${round}: training failed (attempt ${count}), nothing pushed; retrying in ${Math.round(delay / 1000)} s: ${(e as Error).message}`, { round, code: (e as { code?: string }).code });
  }

  async stop(): Promise<void> {
    this.training?.controller.abort();
    await this.training?.done;
    await this.closeApp();
  }
}
