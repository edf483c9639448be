/**
 * What the server optimisers (FedAvgM, FedAdagrad, FedAdam, FedYogi) share: the pseudo-gradient
 * Δ = FedAvg(updates) − x (dataset-size weights, float64, edge-name order, from fedavg.ts) and a
 * step taken coordinate by coordinate in float64 by a small kernel.
 *
 * State: each kernel names its slots (`v` for FedAvgM's momentum, `m` and `v` for the adaptive
 * ones); slot `s` of tensor `w` is the state tensor `s/w`. The state is float32, like the weights:
 * a step reads it back exactly as the previous global commit stored it, so the aggregator after a
 * restart and `fedgit audit` compute the same bytes; within a step every value is float64. The
 * first step starts from zero state (step 0, every slot 0).
 */
import type { MeanTensors, Strategy, StrategyState, Tensor, Tensors, Update } from '../sdk/index.js';
import { fedAvgFloat64, fedAvgWeights } from './fedavg.js';

/** One optimiser's update of one coordinate. */
export type ServerKernel = {
  /** Names of the state slots, one float32 tensor per model tensor each. */
  readonly slots: readonly string[];
  /** Updates `slots` (this coordinate's values, in the order of `ServerKernel.slots`) in place from Δ; returns the increment to x. */
  readonly step: (delta: number, slots: Float64Array) => number;
};

const stateName = (slot: string, tensor: string) => `${slot}/${tensor}`;

/** The state slots of every tensor of `previous` (zeros when `state` is null), refusing a state of another shape. */
function slotsOf(kernel: ServerKernel, previous: Tensors, state: StrategyState | null): Map<string, Float32Array[]> {
  const expected = new Set<string>();
  const slots = new Map<string, Float32Array[]>();
  for (const [name, reference] of previous) {
    slots.set(name, kernel.slots.map((slot) => {
      const key = stateName(slot, name);
      expected.add(key);
      if (!state) return new Float32Array(reference.data.length);
      const data = state.tensors.get(key)?.data;
      if (!data || data.length !== reference.data.length) throw new RangeError(`optimiser state lacks tensor ${key} of ${reference.data.length} values`);
      return data;
    }));
  }
  const extra = state ? [...state.tensors.keys()].find((key) => !expected.has(key)) : undefined;
  if (extra !== undefined) throw new RangeError(`optimiser state has a tensor ${extra} that matches no slot of the model`);
  return slots;
}

/** One server step: Δ from the weighted mean of the updates, then the kernel on every coordinate. */
export function serverStep(kernel: ServerKernel, updates: readonly Update[], previous: Tensors, state: StrategyState | null, weights?: readonly number[]): { tensors: Tensors; state: StrategyState } {
  return stepFromMean(kernel, fedAvgFloat64(updates, previous, weights), previous, state);
}

/** The step from FedAvg's mean (float64, per tensor of `previous`), already computed. */
export function stepFromMean(kernel: ServerKernel, means: MeanTensors, previous: Tensors, state: StrategyState | null): { tensors: Tensors; state: StrategyState } {
  const slotsIn = slotsOf(kernel, previous, state);
  const tensors = new Map<string, Tensor>();
  const stateTensors = new Map<string, Tensor>();
  const scratch = new Float64Array(kernel.slots.length);
  for (const [name, reference] of previous) {
    const x = reference.data, mean = means.get(name)!.data, inSlots = slotsIn.get(name)!;
    const out = new Float32Array(x.length);
    const outSlots = kernel.slots.map(() => new Float32Array(x.length));
    for (let i = 0; i < x.length; i++) {
      for (let s = 0; s < scratch.length; s++) scratch[s] = inSlots[s]![i]!;
      out[i] = x[i]! + kernel.step(mean[i]! - x[i]!, scratch);
      for (let s = 0; s < scratch.length; s++) outSlots[s]![i] = scratch[s]!;
    }
    tensors.set(name, { shape: [...reference.shape], data: out });
    kernel.slots.forEach((slot, s) => stateTensors.set(stateName(slot, name), { shape: [...reference.shape], data: outSlots[s]! }));
  }
  return { tensors, state: { step: (state?.step ?? 0) + 1, tensors: stateTensors } };
}

/**
 * A stateful strategy: `step` carries the state from commit to commit; `aggregate` alone is the
 * first step (from zero state). Weights follow dataset sizes, as FedAvg's (so `maxShare` applies).
 */
export function serverOptimiser(name: string, kernel: ServerKernel): Strategy {
  return {
    name,
    weights: fedAvgWeights,
    aggregate: (updates, previous, weights) => serverStep(kernel, updates, previous, null, weights).tensors,
    step: (updates, previous, state, weights) => serverStep(kernel, updates, previous, state, weights),
    average: { kind: 'step', finish: (mean, previous, state) => stepFromMean(kernel, mean, previous, state) },
  };
}
