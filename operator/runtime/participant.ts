/**
 * Runs one participant (aggregator or edge) until it is stopped or, on request, until its plan is
 * complete. The wiring, in the order it happens: read the participant's secrets and check its
 * data folder (a mistake there stops it at once), build its operator (a Reconciler) and open the
 * repositories, then let notifications drive the reconcile loop — ref watching for local
 * repositories, polling for remote ones, and a webhook when configured.
 */
import type { KeyObject } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { readToken, readWebhookSecret, type ParticipantConfig } from '../config/participant.js';
import { ConfigInvalid } from '../errors.js';
import { Repository, type PushedRef } from '../git/repository.js';
import { AggregatorOperator } from '../reconcile/aggregator-operator.js';
import { EdgeOperator } from '../reconcile/edge-operator.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import { createOpener, isRemoteLocation, type RepositoryOpener } from '../store/open-repository.js';
import { readPrivateKey } from '../trust/keys.js';
import { readAgreementPrivateKey } from '../secagg/agreement-keys.js';
import { createLogger, closeLogger, type Logger } from './logging.js';
import { ReconcileLoop } from './reconcile-loop.js';
import { RefWatcher, warnOnceOfWatchFailure } from './ref-watcher.js';
import type { Registries } from './registries.js';
import type { PushEvent } from '../remote/webhook-verify.js';

export type RunningParticipant = {
  /** Resolves when the participant stops: with an error when it cannot go on as configured. */
  readonly finished: Promise<Error | undefined>;
  stop(): Promise<void>;
  readonly log: Logger;
};

export type ParticipantOptions = { exitWhenDone?: boolean; console?: boolean };

type Closable = { close(): Promise<void> | void };

type Secrets = { auth: Awaited<ReturnType<typeof readToken>>; webhookSecret: string | undefined; key: KeyObject | undefined; agreementKey?: KeyObject };

export async function startParticipant(config: ParticipantConfig, registries: Registries, options: ParticipantOptions = {}): Promise<RunningParticipant> {
  const log = createLogger({ participant: config.name, ...(config.logs ? { logDir: config.logs } : {}), console: options.console ?? true });
  const secrets = await readSecrets(config);
  await checkDataFolder(config);
  let loop!: ReconcileLoop;
  // Mirrors ask their servers only when a poll tick or a push notification says they may have moved.
  const open = createOpener({ cacheDir: config.cache, ...(secrets.auth ? { auth: secrets.auth } : {}), log, listOnlyWhenStale: true });
  const operator = createOperator(config, registries, secrets, open, log, () => loop.trigger());
  await operator.open();

  const finish = settleOnce<Error | undefined>();
  const watcher = new ParticipantWatcher(config, log, (moved) => loop.trigger(moved));
  loop = new ReconcileLoop(async (moved) => {
    const outcome = await operator.reconcile(moved);
    if (outcome?.fatal) finish.settle(outcome.fatal);
    else if (outcome?.done && options.exitWhenDone) finish.settle(undefined);
    await watcher.follow(await operator.watchedLocations());
    return outcome;
  }, log);
  const remoteMayHaveMoved = (repository?: string, pushed?: PushedRef) => {
    open.markRemotesStale(repository, pushed);
    loop.trigger();
  };
  const closables: Closable[] = [watcher, ...(await notifiers(config, secrets, log, remoteMayHaveMoved))];

  log.info(`${config.role} ${config.name} started (pid ${process.pid})`, { pid: process.pid });
  loop.trigger();
  const stop = async () => {
    await loop.stop();
    for (const c of closables) await c.close();
    await operator.stop();
    finish.settle(undefined);
  };
  return { finished: finish.promise, stop, log };
}

/** Token, webhook secret and signing key: a missing or unsafe one is the participant's config (ConfigInvalid, KeyFileRefused…). */
async function readSecrets(config: ParticipantConfig): Promise<Secrets> {
  const auth = await readToken(config);
  const webhookSecret = readWebhookSecret(config);
  const key = config.key ? await readPrivateKey(config.key) : undefined;
  const agreementKey = config.role === 'edge' && config.agreementKey ? await readAgreementPrivateKey(config.agreementKey) : undefined;
  return { auth, webhookSecret, key, ...(agreementKey ? { agreementKey } : {}) };
}

/** An edge's data folder must exist before anything starts: a typo there is the participant's config, not a retry. */
async function checkDataFolder(config: ParticipantConfig): Promise<void> {
  if (config.role !== 'edge' || !config.data) return;
  if (await stat(config.data).then((st) => st.isDirectory(), () => false)) return;
  throw new ConfigInvalid(`${config.file}: data: ${config.data} is not a folder`, { file: config.file, field: 'data' });
}

function createOperator(config: ParticipantConfig, registries: Registries, { key, agreementKey }: Secrets, open: RepositoryOpener, log: Logger, trigger: () => void): Reconciler {
  const common = { locate: config.locate, open, log, ...(key ? { key } : {}) };
  if (config.role === 'aggregator') return new AggregatorOperator({ ...common, ...registries, ...(config.noiseSecret ? { noiseSecretFile: config.noiseSecret } : {}) });
  return new EdgeOperator({
    ...common,
    edge: config.name,
    ...(agreementKey ? { agreementKey } : {}),
    apps: registries.apps,
    strategies: registries.strategies,
    engine: config.engine,
    dataDir: config.data,
    stateDir: config.cache,
    trigger,
  });
}

/** Polling for remote repositories (each tick asks the servers for their refs) and, when configured, a webhook. */
async function notifiers(config: ParticipantConfig, { webhookSecret: secret }: Secrets, log: Logger, trigger: (repository?: string, pushed?: PushedRef) => void): Promise<Closable[]> {
  const closables: Closable[] = [];
  const where = config.locate([config.name]);
  if ([where.plan, where.global, ...Object.values(where.edges)].some(isRemoteLocation)) {
    const poll = setInterval(() => trigger(), config.pollIntervalMs);
    closables.push({ close: () => clearInterval(poll) });
  }
  if (config.webhook && secret) {
    const [host, port] = splitHostPort(config.webhook.listen);
    const { startWebhookServer } = await import('../remote/webhook.js');
    const server = await startWebhookServer({ host, port, path: config.webhook.path, secret, onPush: (event) => trigger(event.repository, pushedRef(event)), log });
    log.info(`webhook endpoint listening on ${host}:${server.port}${config.webhook.path}`);
    closables.push(server);
  }
  return closables;
}

/** What a push event says moved, when it says both values (every provider's push payload does). */
function pushedRef(event: PushEvent): PushedRef | undefined {
  return event.before && event.after ? { ref: event.ref, before: event.before, after: event.after } : undefined;
}

/** Watches the refs of the local repositories an operator cares about; the set can change with the plan. */
class ParticipantWatcher implements Closable {
  private watcher: RefWatcher | undefined;
  private watched = '';

  private readonly watchFailed: (folder: string, e: Error) => void;
  /** The locations found to be local repositories at the last follow. */
  private found = new Set<string>();

  /** `trigger(moved)`: the locations whose refs moved; none named: anything may have. */
  constructor(private readonly config: ParticipantConfig, log: Logger, private readonly trigger: (moved?: readonly string[]) => void) {
    this.watchFailed = warnOnceOfWatchFailure(log, config.pollIntervalMs);
  }

  async follow(locations: readonly string[]): Promise<void> {
    const gitdirs: string[] = [];
    // Called after every reconcile: a repository found once is not looked for again (with many edges, that was most of a reconcile).
    for (const l of locations) {
      if (this.found.has(l) || (!isRemoteLocation(l) && (await Repository.isRepository(l)))) gitdirs.push(l);
    }
    this.found = new Set(gitdirs);
    if (gitdirs.join('\n') === this.watched) return;
    this.watched = gitdirs.join('\n');
    await this.watcher?.stop();
    this.watcher = new RefWatcher({ gitdirs, onChange: (moved) => this.trigger(moved), pollMs: this.config.pollIntervalMs, onWatchFailed: this.watchFailed });
    await this.watcher.start();
    // A change between the reconcile that just ran and the watch starting would be seen by neither: look once more.
    this.trigger();
  }

  async close(): Promise<void> {
    await this.watcher?.stop();
  }
}

function settleOnce<T>(): { promise: Promise<T>; settle: (value: T) => void } {
  let settle!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (settle = resolve));
  return { promise, settle };
}

function splitHostPort(listen: string): [string, number] {
  const colon = listen.lastIndexOf(':');
  return [listen.slice(0, colon).replace(/^\[|\]$/g, ''), Number(listen.slice(colon + 1))];
}

/** Runs a participant as this process's main job; SIGTERM/SIGINT stop it cleanly. */
export async function runParticipantProcess(config: ParticipantConfig, registries: Registries, options: { exitWhenDone?: boolean } = {}): Promise<void> {
  const participant = await startParticipant(config, registries, options);
  const onSignal = (signal: string) => {
    participant.log.info(`${signal} received, stopping`);
    void participant.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const error = await participant.finished;
  await participant.stop();
  await closeLogger(participant.log);
  if (error) throw error;
}
