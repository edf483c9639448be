/**
 * The only things that cross the line between the operator and the apps.
 * The operator never knows what a model is; an app never touches git.
 */

/** One float32 tensor in the canonical wire layout (see README, "Tensor layout"). */
export type Tensor = { readonly shape: readonly number[]; readonly data: Float32Array };
/** Named tensors. Iteration order is not significant; writers sort by name. */
export type Tensors = ReadonlyMap<string, Tensor>;

/** JSON-serialisable metrics (numbers, nested objects, arrays). */
export type MetricValue = number | string | boolean | null | MetricValue[] | { [key: string]: MetricValue };
export type Metrics = { [key: string]: MetricValue };

export type Progress = (message: string, fraction?: number) => void;

export interface TrainRequest {
  readonly weights: Tensors;
  readonly epochs: number;
  readonly round: number;
  readonly planId: string;
  readonly seed: number;
  readonly signal: AbortSignal;
  readonly onProgress?: Progress;
}

export interface TrainResult {
  readonly weights: Tensors;
  readonly datasetSize: number;
  /** `global`: incoming global model on local validation data; `local`: trained model on the same data. */
  readonly metrics: { readonly global: Metrics; readonly local: Metrics };
}

/** What an edge runs: the built-in TensorFlow.js apps and the external-command adapter implement it. */
export interface EdgeApp {
  /** Architecture id, e.g. `aspects-cnn/v1`; written into every commit. */
  readonly architecture: string;
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

/** An aggregation strategy: a pure function, no I/O, never mutates its inputs. */
export interface Strategy {
  readonly name: string;
  aggregate(updates: readonly Update[], previous: Tensors): Tensors;
  /** The weight each update received, in the order given (for the commit trailers). */
  weights(updates: readonly Update[]): number[];
}
