/** Runs one participant (aggregator or edge) until it is stopped or, on request, until its plan is complete. */
import type { ParticipantConfig } from '../config/participant.js';
import { NotFound } from '../errors.js';
import { Repository } from '../git/repository.js';
import { AggregatorOperator } from '../reconcile/aggregator-operator.js';
import { EdgeOperator } from '../reconcile/edge-operator.js';
import { createLogger, closeLogger, type Logger } from './logging.js';
import { ReconcileLoop } from './reconcile-loop.js';
import { RefWatcher } from './ref-watcher.js';
import type { Registries } from './registries.js';

export type RunningParticipant = { readonly finished: Promise<void>; stop(): Promise<void>; readonly log: Logger };

export async function startParticipant(config: ParticipantConfig, registries: Registries, options: { exitWhenDone?: boolean; console?: boolean } = {}): Promise<RunningParticipant> {
  const log = createLogger({ participant: config.name, ...(config.logs ? { logDir: config.logs } : {}), console: options.console ?? true });
  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));
  let loop: ReconcileLoop;
  let operator: AggregatorOperator | EdgeOperator;
  const onDone = (kind: string) => {
    if (kind === 'done' && options.exitWhenDone) resolveFinished();
  };
  if (config.role === 'aggregator') {
    operator = new AggregatorOperator({ locate: config.locate, ...registries, log, onAction: (a) => onDone(a.kind) });
  } else {
    operator = new EdgeOperator({
      edge: config.name,
      locate: config.locate,
      apps: registries.apps,
      strategies: registries.strategies.ids(),
      engine: config.engine,
      dataDir: config.data,
      log,
      trigger: () => loop.trigger(),
      onAction: (a) => onDone(a.kind),
    });
  }
  const required = config.role === 'aggregator' ? [config.locate([]).plan, config.locate([]).global] : (operator as EdgeOperator).watchedGitdirs();
  for (const gitdir of required) {
    if (!(await Repository.isRepository(gitdir))) throw new NotFound(`${config.file}: no git repository at ${gitdir}`, { file: config.file, gitdir });
  }
  let watcher: RefWatcher | undefined;
  let watched = '';
  const rewatch = async () => {
    const gitdirs = [];
    for (const g of await operator.watchedGitdirs()) if (await Repository.isRepository(g)) gitdirs.push(g);
    if (gitdirs.join('\n') === watched) return;
    watched = gitdirs.join('\n');
    await watcher?.stop();
    watcher = new RefWatcher({ gitdirs, onChange: () => loop.trigger(), pollMs: config.pollIntervalMs });
    await watcher.start();
  };
  loop = new ReconcileLoop(async () => {
    const outcome = await operator.reconcile();
    await rewatch();
    return outcome;
  }, log);
  log.info(`${config.role} ${config.name} started (pid ${process.pid})`, { pid: process.pid });
  loop.trigger();
  const stop = async () => {
    await loop.stop();
    await watcher?.stop();
    if (operator instanceof EdgeOperator) await operator.stop();
    resolveFinished();
  };
  return { finished, stop, log };
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
  await participant.finished;
  await participant.stop();
  await closeLogger(participant.log);
}
