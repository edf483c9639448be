/**
 * The fedgit app SDK: everything an edge app or an aggregation strategy may
 * use of fedgit, in one file. Apps import this module and nothing else of
 * fedgit (test/import-rules.test.ts enforces it); the operator never imports
 * an app — the composition root (bin/fedgit.ts) hands the registries in.
 *
 * Writing an edge app
 *   Implement `EdgeApp` (initial weights, train from given weights for N
 *   epochs, evaluate, close) and register it in edge-app/registry.ts, an
 *   `AppRegistry`: an id, a zod schema for the plan's `app.options`, the
 *   architecture id written into every commit, and the `TensorSpec` every
 *   update must match. Weights are `Tensors`: named float32 arrays in the
 *   canonical layout (README, "Weights on the wire"). Honour
 *   `TrainRequest.signal`: throw `Aborted` once it fires. Set
 *   `appliesProximalTerm` when `train` adds FedProx's (μ/2)·‖w − w_global‖²
 *   for `TrainRequest.proximalMu` (docs/fedprox.md); without it an edge
 *   refuses plans with μ > 0.
 *
 * Writing a strategy
 *   A `Strategy` is a pure function over `Update`s (weights, dataset size,
 *   edge name), given in edge-name order; no I/O, never mutate inputs.
 *   Register it in aggregator-app/registry.ts (`StrategyRegistry`). A server
 *   optimiser also implements `step`, which takes and returns its
 *   `StrategyState`; the operator stores that state in the global commit.
 *   A strategy whose merge follows from FedAvg's weighted mean declares
 *   `average`: the operator then reads one update at a time (memory flat in
 *   the number of edges); one without it is given every update at once.
 *   What the operator must know about a strategy is a capability of the
 *   registry (`weighsByDatasetSize`, `planProblem`, `proximalMu` for a μ the
 *   edges add to their loss), never a comparison with its id. Update-norm
 *   clipping (plan `clip`) runs before any strategy: a strategy sees the
 *   clipped updates and needs nothing of its own for it.
 *
 * Errors
 *   Throw the classes below; each declares its exit status and whether it
 *   stops the edge (README, "Exit status"). `DataInvalid` (the local data
 *   cannot be used) and `ConfigInvalid` (the participant's own config is
 *   wrong) stop the edge; `AppFailed` and any other error make it retry
 *   the round with back-off. Subclass `FedgitError` for errors of your own.
 *
 * Logging
 *   `LocalAppConfig.log` is a `Log`: error/warn/info/debug with optional
 *   structured data. It goes to the participant's console and JSON-lines file.
 *
 * Checkpoints
 *   `renderSafetensors` / `parseSafetensors` read and write the safetensors
 *   files the operator commits (float32, little-endian, `__metadata__`).
 */
export type {
  Tensor, Tensors, MetricValue, Metrics, Progress, Log, LogLevel,
  TrainRequest, TrainResult, EdgeApp, Update, Strategy, StrategyState, Engine, LocalAppConfig, TensorSpec,
  Float64Tensor, MeanTensors, Averaging, AppRegistry, StrategyRegistry,
} from '../operator/contracts.js';

export { inEdgeOrder, zeroSums, addWeighted } from '../operator/contracts.js';

export {
  FedgitError, EXIT, type ExitStatus,
  Aborted, AppFailed, CheckpointCorrupt, ConfigInvalid, DataInvalid, UnknownComponent,
} from '../operator/errors.js';

export { renderSafetensors, parseSafetensors, type Checkpoint } from '../operator/checkpoint/safetensors.js';
