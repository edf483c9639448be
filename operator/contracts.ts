/**
 * The only things that cross the line between the operator and the apps
 * (apps see them through sdk/index.ts). The operator never knows what a
 * model is; an app never touches git.
 */

/** One float32 tensor in the canonical wire layout (see README, "Tensor layout"). */
export type Tensor = { readonly shape: readonly number[]; readonly data: Float32Array };
/** Named tensors. Iteration order is not significant; writers sort by name. */
export type Tensors = ReadonlyMap<string, Tensor>;

/** JSON-serialisable metrics (numbers, nested objects, arrays). */
export type MetricValue = number | string | boolean | null | MetricValue[] | { [key: string]: MetricValue };
export type Metrics = { [key: string]: MetricValue };

export type Progress = (message: string, fraction?: number) => void;

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/**
 * Where apps and the operator's parts write log lines: the one log type of fedgit. `data` is
 * structured context for the JSON-lines log file. A participant's logger (operator/runtime/logging.ts)
 * is one; a test can collect lines with four closures.
 */
export interface Log {
  error(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  info(message: string, data?: Record<string, unknown>): void;
  debug(message: string, data?: Record<string, unknown>): void;
}

export interface TrainRequest {
  readonly weights: Tensors;
  readonly epochs: number;
  readonly round: number;
  readonly planId: string;
  readonly seed: number;
  readonly signal: AbortSignal;
  readonly onProgress?: Progress;
  /**
   * FedProx (Li et al., MLSys 2020): μ of the proximal term (μ/2)·‖w − w_global‖² the app adds to
   * its local loss, w_global being `weights`. Absent or 0: plain local training. The operator sets
   * it only for apps with `appliesProximalTerm`.
   */
  readonly proximalMu?: number;
}

export interface TrainResult {
  readonly weights: Tensors;
  readonly datasetSize: number;
  /** `global`: incoming global model on local validation data; `local`: trained model on the same data. */
  readonly metrics: { readonly global: Metrics; readonly local: Metrics };
}

/** What an edge runs: the built-in TensorFlow.js apps and the external-command adapter implement it. */
export interface EdgeApp {
  /** Architecture id, e.g. `aspects-cnn/v2`; written into every commit. */
  readonly architecture: string;
  /** True when `train` applies `TrainRequest.proximalMu`; an edge refuses a plan with μ > 0 for an app without it. */
  readonly appliesProximalTerm?: boolean;
  initialWeights(seed: number): Promise<Tensors>;
  train(request: TrainRequest): Promise<TrainResult>;
  evaluate(weights: Tensors, signal: AbortSignal): Promise<Metrics>;
  close(): Promise<void>;
}

/** One accepted local model, as the aggregator sees it. */
export type Update = {
  readonly edge: string;
  readonly datasetSize: number;
  readonly tensors: Tensors;
  readonly metrics?: Metrics;
};

/**
 * Edge-name order (by UTF-16 code units, as names are ASCII): the one order in which updates
 * reach a strategy and merge trailers are written, so a merge sums in the same order on any
 * machine and `fedgit audit` can recompute it bit for bit.
 */
export function inEdgeOrder<T extends { readonly edge: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => (a.edge < b.edge ? -1 : a.edge > b.edge ? 1 : 0));
}

/** Zeroed float64 sums with the names and shapes of `previous`: what `addWeighted` accumulates into. */
export function zeroSums(previous: Tensors): MeanTensors {
  return new Map([...previous].map(([name, reference]) => [name, { shape: [...reference.shape], data: new Float64Array(reference.data.length) }]));
}

/**
 * sums += weight · update, per coordinate, in float64. Called once per update in edge-name order,
 * it is the accumulation of FedAvg's mean (`MeanTensors`), whether a merge holds every update or
 * reads them one at a time, so the two give the same bytes.
 */
export function addWeighted(sums: MeanTensors, update: Update, weight: number): void {
  for (const [name, { data: sum }] of sums) {
    const data = update.tensors.get(name)?.data;
    if (!data || data.length !== sum.length) throw new RangeError(`update from ${update.edge} lacks tensor ${name} of ${sum.length} values`);
    for (let i = 0; i < sum.length; i++) sum[i]! += weight * data[i]!;
  }
}

/**
 * What a server optimiser carries from one global commit to the next (momentum, moments): named
 * float32 tensors and how many steps it has taken. Stored beside the weights in the global commit,
 * so a restarted aggregator and `fedgit audit` start each step from exactly what was committed.
 */
export type StrategyState = { readonly step: number; readonly tensors: Tensors };

/** An aggregation strategy: a pure function, no I/O, never mutates its inputs. */
export interface Strategy {
  readonly name: string;
  /**
   * `weights` (aligned with `updates`, summing to 1) replace the strategy's own when the plan
   * bounds each edge's influence (operator/reconcile/influence.ts).
   */
  aggregate(updates: readonly Update[], previous: Tensors, weights?: readonly number[]): Tensors;
  /** The weight each update received, in the order given (for the commit trailers). */
  weights(updates: readonly Update[]): number[];
  /**
   * Server optimisers only (stateful strategies): one step from the previous global commit's
   * weights and state (`null` before the first merge: zero state). When present, the operator
   * calls it instead of `aggregate` and commits the returned state with the weights.
   */
  step?(updates: readonly Update[], previous: Tensors, state: StrategyState | null, weights?: readonly number[]): { readonly tensors: Tensors; readonly state: StrategyState };
  /**
   * Averaging strategies only (FedAvg and those built on its mean): how the merge follows from the
   * weighted mean. With it the operator reads one update at a time and never holds them all
   * (operator/reconcile/merge.ts); `weights` is then called before any tensor loads, with the
   * claims only (`tensors` empty), so it must depend on nothing but `edge` and `datasetSize`.
   * Must give the bytes `aggregate` (and `step`) give.
   */
  readonly average?: Averaging;
}

/** A float64 tensor: a weighted mean before it is rounded to float32. */
export type Float64Tensor = { readonly shape: readonly number[]; readonly data: Float64Array };
/**
 * Σ wₖ·updateₖ per coordinate, in float64, updates in edge-name order, for every tensor of the
 * previous global model (aggregator-app/fedavg.ts, `addWeighted`).
 */
export type MeanTensors = ReadonlyMap<string, Float64Tensor>;

/**
 * The merge from the weighted mean. `mean`: the merge is that mean rounded once to float32 (FedAvg),
 * so the operator keeps nothing of the previous model but its tensor names and shapes, and rounds
 * in place. `step`: it also needs the previous model and a state (the server optimisers).
 */
export type Averaging =
  | { readonly kind: 'mean' }
  | { readonly kind: 'step'; finish(mean: MeanTensors, previous: Tensors, state: StrategyState | null): { readonly tensors: Tensors; readonly state: StrategyState } };

/** Where an edge runs its model: the built-in engine or a third-party command (see README, "External command"). */
export type Engine =
  | { readonly kind: 'builtin' }
  | { readonly kind: 'command'; readonly command: readonly string[]; readonly timeoutMs?: number; readonly retries?: number; readonly env?: Readonly<Record<string, string>> };

/** What only the hospital knows: its data and how it runs the model. Never committed. */
export type LocalAppConfig = {
  readonly edge: string;
  readonly dataDir?: string;
  readonly engine: Engine;
  readonly log: Log;
};

export type TensorSpec = { readonly name: string; readonly shape: readonly number[] };

/**
 * The apps a plan may name, looked up by `app.id`. The operator reaches the
 * apps only through this interface (loaded from edge-app/registry.js).
 */
export interface AppRegistry {
  /** Known app ids. */
  ids(): readonly string[];
  /** Validates `app.options`; the returned value is what the app receives. Throws a zod error on bad input. */
  optionsSchema(appId: string): import('zod').ZodType;
  architecture(appId: string, options: unknown): string;
  /** Tensor names and shapes every update must have. */
  tensorSpec(appId: string, options: unknown): readonly TensorSpec[];
  /** Round-0 weights, deterministic from the seed; must not need a GPU or a framework. */
  initialWeights(appId: string, options: unknown, seed: number): Promise<Tensors>;
  createEdgeApp(appId: string, options: unknown, local: LocalAppConfig): Promise<EdgeApp>;
}

/** The aggregation strategies a plan may name (`strategy: <id>` or `strategy: { id, options }`). */
export interface StrategyRegistry {
  ids(): readonly string[];
  /** Validates `strategy.options`; a strategy without options takes only `{}`. Throws a zod error on bad input. */
  optionsSchema(id: string): import('zod').ZodType;
  /** Whether the strategy weighs updates by dataset size (then the plan's `maxShare` bounds those weights). */
  weighsByDatasetSize(id: string): boolean;
  /**
   * Whether the aggregator reads the strategy's updates one at a time (an averaging strategy, with
   * `Strategy.average`: memory flat in the number of edges) or holds them all (median, trimmed mean, Krum).
   */
  streamsUpdates(id: string): boolean;
  /**
   * μ of the proximal term (μ/2)·‖w − w_global‖² the strategy asks every edge to add to its local
   * loss (FedProx, Li et al. 2020), from its options (defaults applied); 0 for a strategy that asks
   * for none. The edge reads this capability, never the strategy's id.
   */
  proximalMu(id: string, options?: unknown): number;
  /** Why a plan with this many edges cannot use the strategy with these options (e.g. Krum needs n ≥ 2f + 3), or undefined. */
  planProblem(id: string, options: unknown, edgeCount: number): string | undefined;
  /** The strategy with its (validated) options. */
  get(id: string, options?: unknown): Strategy;
}
