/** Runs one participant (aggregator or edge) until it is stopped or, on request, until its plan is complete. */
import { readToken, readWebhookSecret, type ParticipantConfig } from '../config/participant.js';
import { AggregatorOperator } from '../reconcile/aggregator-operator.js';
import { EdgeOperator } from '../reconcile/edge-operator.js';
import { createOpener, isRemoteLocation } from '../store/open-repository.js';
import { createLogger, closeLogger, type Logger } from './logging.js';
import { ReconcileLoop } from './reconcile-loop.js';
import { RefWatcher } from './ref-watcher.js';
import type { Registries } from './registries.js';
import { Repository } from '../git/repository.js';
import { stat } from 'node:fs/promises';
import { ConfigInvalid } from '../errors.js';
import { readPrivateKey } from '../trust/keys.js';

export type RunningParticipant = {
  /** Resolves when the participant stops: with an error when it cannot go on as configured. */
  readonly finished: Promise<Error | undefined>;
  stop(): Promise<void>;
  readonly log: Logger;
};

type Closable = { close(): Promise<void> | void };

export async function startParticipant(config: ParticipantConfig, registries: Registries, options: { exitWhenDone?: boolean; console?: boolean } = {}): Promise<RunningParticipant> {
  const log = createLogger({ participant: config.name, ...(config.logs ? { logDir: config.logs } : {}), console: options.console ?? true });
  const auth = await readToken(config);
  const webhookSecret = readWebhookSecret(config);
  const key = config.key ? await readPrivateKey(config.key) : undefined;
  const open = createOpener({ cacheDir: config.cache, ...(auth ? { auth } : {}), log });
  if (config.role === 'edge' && config.data && !(await stat(config.data).then((st) => st.isDirectory(), () => false))) {
    throw new ConfigInvalid(`${config.file}: data: ${config.data} is not a folder`, { file: config.file, field: 'data' });
  }
  let resolveFinished!: (error?: Error) => void;
  const finished = new Promise<Error | undefined>((resolve) => (resolveFinished = resolve));
  let loop: ReconcileLoop;
  const onDone = (kind: string) => {
    if (kind === 'done' && options.exitWhenDone) resolveFinished();
  };
  let operator: AggregatorOperator | EdgeOperator;
  if (config.role === 'aggregator') {
    operator = new AggregatorOperator({ locate: config.locate, open, ...registries, log, ...(key ? { key } : {}), onAction: (a) => onDone(a.kind) });
    await operator.global();
  } else {
    operator = new EdgeOperator({
      edge: config.name,
      locate: config.locate,
      open,
      apps: registries.apps,
      strategies: registries.strategies.ids(),
      engine: config.engine,
      dataDir: config.data,
      log,
      ...(key ? { key } : {}),
      stateDir: config.cache,
      trigger: () => loop.trigger(),
      fatal: (error) => resolveFinished(error),
      onAction: (a) => onDone(a.kind),
    });
    await operator.open();
  }

  // Local repositories are watched; remote ones are polled (each reconcile asks the server for its refs) and, with a webhook, pushed to us.
  let watcher: RefWatcher | undefined;
  let watched = '';
  const rewatch = async () => {
    const locations = operator instanceof AggregatorOperator ? await operator.watchedLocations() : operator.watchedLocations();
    const gitdirs: string[] = [];
    for (const l of locations) if (!isRemoteLocation(l) && (await Repository.isRepository(l))) gitdirs.push(l);
    if (gitdirs.join('\n') === watched) return;
    watched = gitdirs.join('\n');
    await watcher?.stop();
    watcher = new RefWatcher({ gitdirs, onChange: () => loop.trigger(), pollMs: config.pollIntervalMs });
    await watcher.start();
    // A change between the reconcile that just ran and the watch starting would be seen by neither: look once more.
    loop.trigger();
  };
  const where = config.locate([config.name]);
  const hasRemote = [where.plan, where.global, ...Object.values(where.edges)].some(isRemoteLocation);
  loop = new ReconcileLoop(async () => {
    const outcome = await operator.reconcile();
    await rewatch();
    return outcome;
  }, log);
  const closables: Closable[] = [];
  if (hasRemote) {
    const poll = setInterval(() => loop.trigger(), config.pollIntervalMs);
    closables.push({ close: () => clearInterval(poll) });
  }
  if (config.webhook && webhookSecret) {
    const [host, port] = splitHostPort(config.webhook.listen);
    const { startWebhookServer } = await import('../remote/webhook.js');
    const server = await startWebhookServer({
      host,
      port,
      path: config.webhook.path,
      secret: webhookSecret,
      onPush: () => loop.trigger(),
      log,
    });
    log.info(`webhook endpoint listening on ${host}:${server.port}${config.webhook.path}`);
    closables.push(server);
  }
  log.info(`${config.role} ${config.name} started (pid ${process.pid})`, { pid: process.pid });
  loop.trigger();
  const stop = async () => {
    await loop.stop();
    await watcher?.stop();
    for (const c of closables) await c.close();
    if (operator instanceof EdgeOperator) await operator.stop();
    resolveFinished();
  };
  return { finished, stop, log };
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
