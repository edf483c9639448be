/**
 * The external-command adapter: an EdgeApp whose model lives in another
 * program (for example a PyTorch script at a hospital). The contract the
 * program must follow is in CONTRACT.md beside this file.
 *
 * Each call gets a fresh temporary work dir; inputs are written there, the
 * program runs as `<program> <args...> <action>` with FEDGIT_* variables, and
 * its outputs are checked before anything is returned. Every failure is an
 * AppFailed naming the reason and the last lines of stderr; an abort is an
 * Aborted once the program's process group is gone.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { renderSafetensors } from '../../sdk/index.js';
import type { EdgeApp, Log, Metrics, Progress, TensorSpec, Tensors, TrainRequest, TrainResult } from '../../sdk/index.js';
import { Aborted, AppFailed, ConfigInvalid } from '../../sdk/index.js';
import { checkSameLayout, checkSpec, OutputInvalid, readEvaluateMetrics, readOutputWeights, readTrainMetrics } from './read-outputs.js';
import { runCommand, type RunOutcome } from './run-command.js';

export type CommandAppOptions = {
  /** Program and its fixed arguments; the action is appended. */
  readonly command: readonly string[];
  /** The edge's data folder, passed as FEDGIT_DATA_DIR (resolved to an absolute path). */
  readonly dataDir: string;
  /** Working directory of the program; default: the per-call work dir. */
  readonly cwd?: string;
  /** Extra environment, on top of the operator's own; FEDGIT_* set by the adapter win. */
  readonly env?: Readonly<Record<string, string>>;
  readonly architecture: string;
  /** Per attempt; default: no limit. */
  readonly timeoutMs?: number;
  /** Further attempts after a failed one (not after an abort); default 1. */
  readonly retries?: number;
  /** Between SIGTERM and SIGKILL on abort or timeout; default 5000. */
  readonly killGraceMs?: number;
  /** Receives the program's output lines and the adapter's notes; default: discard. */
  readonly log?: Log;
  /** Throws if the tensors are not the expected names/shapes (e.g. from the model spec). */
  readonly validate?: (tensors: Tensors) => void;
  /** Expected tensor names and shapes of every output model (checked before `validate`). */
  readonly spec?: readonly TensorSpec[];
  /**
   * Round-0 weights computed in-process (e.g. the engine-independent init of the
   * model spec). When given, `initialWeights` does not run the command's `init`.
   */
  readonly initialWeights?: (seed: number) => Tensors | Promise<Tensors>;
  /** Parent of the per-call work dirs; default os.tmpdir(). */
  readonly tmpDir?: string;
  /**
   * Writes inputs the program needs besides the weights (for aspects-region/v3:
   * the features fedgit computed, FEDGIT_FEATURES) into the work dir before a
   * train or evaluate call; returns the variables that name them. A failure is
   * AppFailed without a retry (it is not the program's fault).
   */
  readonly prepareInputs?: (workDir: string, signal: AbortSignal) => Promise<Readonly<Record<string, string>>>;
};

export type CommandAction = 'train' | 'evaluate' | 'init';

/** Environment variable names: the contract, spelled once. */
export const ENV = {
  action: 'FEDGIT_ACTION',
  architecture: 'FEDGIT_ARCHITECTURE',
  inputWeights: 'FEDGIT_INPUT_WEIGHTS',
  outputWeights: 'FEDGIT_OUTPUT_WEIGHTS',
  metrics: 'FEDGIT_METRICS',
  epochs: 'FEDGIT_EPOCHS',
  round: 'FEDGIT_ROUND',
  planId: 'FEDGIT_PLAN_ID',
  seed: 'FEDGIT_SEED',
  dataDir: 'FEDGIT_DATA_DIR',
  workDir: 'FEDGIT_WORK_DIR',
  features: 'FEDGIT_FEATURES',
  proximalMu: 'FEDGIT_PROXIMAL_MU',
} as const;

/** A stdout line `fedgit-progress <fraction> <message>` is reported as training progress. */
const PROGRESS_LINE = /^fedgit-progress\s+([0-9.eE+-]+)\s*(.*)$/;

const FILES = { inputWeights: 'input.safetensors', outputWeights: 'output.safetensors', metrics: 'metrics.json' } as const;

type Outputs = { weights?: Tensors; trainMetrics?: Awaited<ReturnType<typeof readTrainMetrics>>; metrics?: Metrics };

type Invocation = {
  readonly action: CommandAction;
  readonly signal: AbortSignal;
  readonly inputWeights?: Tensors;
  readonly metadata?: Record<string, string>;
  readonly vars: Record<string, string>;
  readonly onProgress?: Progress;
  /** Reads and checks the outputs from the work dir; throws OutputInvalid. */
  readonly collect: (paths: { outputWeights: string; metrics: string }) => Promise<Outputs>;
};

const discard: Log = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

type WorkPaths = { readonly inputWeights: string; readonly outputWeights: string; readonly metrics: string };

export function createCommandApp(options: CommandAppOptions): EdgeApp {
  return new CommandApp(options);
}

/**
 * One call is an invocation: up to `retries + 1` attempts, each in a fresh work dir
 * (write inputs → run the program → collect and check its outputs → remove the dir).
 */
class CommandApp implements EdgeApp {
  readonly architecture: string;
  /** The command gets μ in FEDGIT_PROXIMAL_MU and must confirm it applied it (`acknowledgedMu`). */
  readonly appliesProximalTerm = true;
  private readonly program: string;
  private readonly fixedArgs: readonly string[];
  private readonly label: string;
  private readonly logger: Log;
  private readonly retries: number;
  private readonly killGraceMs: number;
  private readonly dataDir: string;
  private readonly closing = new AbortController();
  private readonly inflight = new Set<Promise<Outputs>>();

  constructor(private readonly options: CommandAppOptions) {
    const [first, ...fixedArgs] = options.command;
    if (first === undefined || first === '') throw new AppFailed('the external command is empty', { command: [] });
    this.program = first;
    this.fixedArgs = fixedArgs;
    this.label = [first, ...fixedArgs].join(' ');
    this.architecture = options.architecture;
    this.logger = options.log ?? discard;
    this.retries = options.retries ?? 1;
    if (!Number.isSafeInteger(this.retries) || this.retries < 0) throw new RangeError(`retries must be a non-negative integer, got ${this.retries}`);
    this.killGraceMs = options.killGraceMs ?? 5000;
    this.dataDir = path.resolve(options.dataDir);
  }

  async initialWeights(seed: number): Promise<Tensors> {
    if (this.options.initialWeights !== undefined) return this.options.initialWeights(seed);
    const out = await this.invoke({
      action: 'init',
      signal: new AbortController().signal,
      vars: { [ENV.seed]: String(seed) },
      collect: async (p) => ({ weights: this.validated(await readOutputWeights(p.outputWeights, ENV.outputWeights)) }),
    });
    return out.weights!;
  }

  async train(request: TrainRequest): Promise<TrainResult> {
    const out = await this.invoke({
      action: 'train',
      signal: request.signal,
      inputWeights: request.weights,
      metadata: { 'fedgit.architecture': this.architecture, 'fedgit.plan': request.planId, 'fedgit.round': String(request.round) },
      vars: {
        [ENV.epochs]: String(request.epochs), [ENV.round]: String(request.round), [ENV.planId]: request.planId, [ENV.seed]: String(request.seed),
        [ENV.proximalMu]: String(request.proximalMu ?? 0),
      },
      ...(request.onProgress !== undefined ? { onProgress: request.onProgress } : {}),
      collect: async (p) => {
        const weights = await readOutputWeights(p.outputWeights, ENV.outputWeights);
        checkSameLayout(weights, request.weights);
        this.validated(weights);
        return { weights, trainMetrics: await readTrainMetrics(p.metrics, ENV.metrics) };
      },
    });
    const m = out.trainMetrics!;
    const mu = this.acknowledgedMu(request.proximalMu ?? 0, m.proximalMu);
    return { weights: out.weights!, datasetSize: m.datasetSize, metrics: { global: m.global, local: mu > 0 ? { ...m.local, proximalMu: mu } : m.local } };
  }

  /**
   * A command written before FedProx would ignore FEDGIT_PROXIMAL_MU and silently train FedAvg's
   * local step, so with μ > 0 its metrics must say `"proximalMu": μ`. Otherwise this engine cannot
   * serve the plan, and retrying would not change that: ConfigInvalid stops the edge.
   */
  private acknowledgedMu(requested: number, acknowledged: number | undefined): number {
    if (requested === 0 || acknowledged === requested) return requested;
    const said = acknowledged === undefined ? 'its metrics file has no "proximalMu"' : `its metrics file says "proximalMu": ${acknowledged}`;
    throw new ConfigInvalid(
      `external command \`${this.label} train\` did not apply the FedProx proximal term: it was given ${ENV.proximalMu}=${requested} but ${said}; a command that does not implement FedProx (CONTRACT.md, "FedProx") cannot train this plan`,
      { field: 'engine', command: [...this.options.command], requested, ...(acknowledged !== undefined ? { acknowledged } : {}) },
    );
  }

  async evaluate(weights: Tensors, signal: AbortSignal): Promise<Metrics> {
    const out = await this.invoke({
      action: 'evaluate',
      signal,
      inputWeights: weights,
      metadata: { 'fedgit.architecture': this.architecture },
      vars: {},
      collect: async (p) => ({ metrics: await readEvaluateMetrics(p.metrics, ENV.metrics) }),
    });
    return out.metrics!;
  }

  /** Stops running commands (their process groups are terminated) and waits for them. */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.inflight]);
  }

  private invoke(inv: Invocation): Promise<Outputs> {
    const run = this.invokeWithRetries(inv);
    this.inflight.add(run);
    const forget = () => this.inflight.delete(run);
    run.then(forget, forget);
    return run;
  }

  private async invokeWithRetries(inv: Invocation): Promise<Outputs> {
    const signal = AbortSignal.any([inv.signal, this.closing.signal]);
    const attempts = this.retries + 1;
    let last: AttemptFailed | undefined;
    for (let n = 1; n <= attempts; n++) {
      if (signal.aborted) throw new Aborted(`external command ${inv.action} aborted`);
      try {
        return await this.attempt(inv, signal);
      } catch (e) {
        if (e instanceof Aborted) throw e;
        if (!(e instanceof AttemptFailed)) {
          // Our own I/O (temp dir, input file): not the command's fault, not worth a retry.
          throw new AppFailed(`external command \`${this.label} ${inv.action}\` could not run: ${(e as Error).message}`, { command: [...this.options.command], action: inv.action }, { cause: e });
        }
        last = e;
        this.logger.warn(`external command ${inv.action} failed (attempt ${n} of ${attempts}): ${e.message}`);
      }
    }
    throw this.exhausted(inv.action, last!, attempts);
  }

  /** The AppFailed after the last attempt failed: the reason, how the program ended, the last lines of its stderr. */
  private exhausted(action: CommandAction, failed: AttemptFailed, attempts: number): AppFailed {
    const tail = failed.outcome.stderrTail;
    const tailText = tail.length > 0 ? `\nlast lines of stderr:\n${tail.slice(-10).map((l) => `  ${l}`).join('\n')}` : '';
    this.logger.error(`external command ${action} failed after ${attempts} attempt(s): ${failed.message}`);
    return new AppFailed(
      `external command \`${this.label} ${action}\` failed: ${failed.message}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}${tailText}`,
      {
        command: [...this.options.command],
        action,
        reason: failed.message,
        attempts,
        outcome: failed.outcome.kind,
        ...(failed.outcome.kind === 'exited' ? { exitCode: failed.outcome.code } : {}),
        ...(failed.outcome.kind === 'signalled' ? { signal: failed.outcome.signal } : {}),
        stderrTail: [...tail],
      },
      { cause: failed.cause ?? failed },
    );
  }

  private async attempt(inv: Invocation, signal: AbortSignal): Promise<Outputs> {
    const workDir = await fs.mkdtemp(path.join(this.options.tmpDir ?? os.tmpdir(), 'fedgit-command-'));
    try {
      const paths: WorkPaths = {
        inputWeights: path.join(workDir, FILES.inputWeights),
        outputWeights: path.join(workDir, FILES.outputWeights),
        metrics: path.join(workDir, FILES.metrics),
      };
      const vars = await this.writeInputs(inv, workDir, paths, signal);
      const outcome = await this.run(inv, workDir, vars, signal);
      if (outcome.kind === 'aborted') throw new Aborted(`external command ${inv.action} aborted`);
      const failure = describeFailure(outcome, this.options.timeoutMs);
      if (failure !== undefined) throw new AttemptFailed(failure, outcome);
      try {
        return await inv.collect(paths);
      } catch (e) {
        if (e instanceof OutputInvalid) throw new AttemptFailed(e.message, outcome, e);
        throw e;
      }
    } finally {
      await fs.rm(workDir, { recursive: true, force: true }).catch((e: unknown) => this.logger.warn(`could not remove ${workDir}: ${String(e)}`));
    }
  }

  /** Writes the input weights (and what `prepareInputs` adds) into the work dir; returns the FEDGIT_* variables naming them. */
  private async writeInputs(inv: Invocation, workDir: string, paths: WorkPaths, signal: AbortSignal): Promise<Record<string, string>> {
    const vars: Record<string, string> = {
      [ENV.action]: inv.action,
      [ENV.architecture]: this.architecture,
      [ENV.dataDir]: this.dataDir,
      [ENV.workDir]: workDir,
      ...inv.vars,
    };
    if (inv.inputWeights !== undefined) {
      await fs.writeFile(paths.inputWeights, renderSafetensors(inv.inputWeights, inv.metadata ?? {}));
      vars[ENV.inputWeights] = paths.inputWeights;
    }
    if (inv.action === 'train' || inv.action === 'init') vars[ENV.outputWeights] = paths.outputWeights;
    if (inv.action === 'train' || inv.action === 'evaluate') {
      vars[ENV.metrics] = paths.metrics;
      if (this.options.prepareInputs !== undefined) Object.assign(vars, await this.options.prepareInputs(workDir, signal));
    }
    return vars;
  }

  /** Runs `<program> <args...> <action>`; stdout progress lines go to `onProgress`, every line to the log. */
  private run(inv: Invocation, workDir: string, vars: Record<string, string>, signal: AbortSignal): Promise<RunOutcome> {
    return runCommand({
      program: this.program,
      args: [...this.fixedArgs, inv.action],
      cwd: this.options.cwd ?? workDir,
      env: { ...inheritedEnv(), ...this.options.env, ...vars },
      signal,
      timeoutMs: this.options.timeoutMs,
      killGraceMs: this.killGraceMs,
      onStdoutLine: (line) => {
        const m = PROGRESS_LINE.exec(line);
        if (m !== null && inv.onProgress !== undefined) {
          const fraction = Number(m[1]);
          inv.onProgress(m[2] ?? '', Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : undefined);
        }
        this.logger.info(`[${inv.action}] ${line}`);
      },
      onStderrLine: (line) => this.logger.info(`[${inv.action} stderr] ${line}`),
    });
  }

  private validated(tensors: Tensors): Tensors {
    if (this.options.spec !== undefined) checkSpec(tensors, this.options.spec);
    if (this.options.validate !== undefined) {
      try {
        this.options.validate(tensors);
      } catch (e) {
        throw new OutputInvalid(`the output weights do not match the model: ${(e as Error).message}`, { cause: e });
      }
    }
    return tensors;
  }
}

/** The operator's environment without any FEDGIT_* contract variable (only the adapter sets those). */
function inheritedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.values(ENV)) delete env[name];
  return env;
}

/** One failed attempt; retried, then turned into AppFailed. */
class AttemptFailed extends Error {
  constructor(
    message: string,
    readonly outcome: RunOutcome,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

function describeFailure(outcome: RunOutcome, timeoutMs: number | undefined): string | undefined {
  switch (outcome.kind) {
    case 'exited':
      return outcome.code === 0 ? undefined : `exited with code ${outcome.code}`;
    case 'signalled':
      return `killed by signal ${outcome.signal}`;
    case 'timed-out':
      return `timed out after ${timeoutMs ?? outcome.durationMs} ms`;
    case 'spawn-failed':
      return `could not start: ${outcome.message}`;
    case 'aborted':
      return undefined;
    default: {
      const never: never = outcome;
      return String(never);
    }
  }
}
