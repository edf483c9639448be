/**
 * aspects-cnn/v2 as data: region names, tensor names and shapes in the
 * canonical (PyTorch) layout, grid rules and the engine-independent
 * initialisation. No TensorFlow.js here: the aggregator and the external
 * command adapter import this module. The contract is MODEL.md.
 */
import { EXIT, FedgitError } from '../../sdk/index.js';
import { mulberry32 } from '../random.js';
import type { Tensor, Tensors } from '../../sdk/index.js';

export const ASPECTS_ARCHITECTURE = 'aspects-cnn/v2';

/** Output order of the network (symptomatic hemisphere). */
export const ASPECTS_REGIONS = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'] as const;
export type AspectsRegion = (typeof ASPECTS_REGIONS)[number];
export const REGION_COUNT = ASPECTS_REGIONS.length;

/** Model grid in cells: depth = z (D), height = y (H), width = x (W, both hemispheres). */
export type Grid = { readonly depth: number; readonly height: number; readonly width: number };
/** Same values as `DEFAULT_GRID` of edge-app/preprocess (kept here so this module has no dependencies). */
export const DEFAULT_ASPECTS_GRID: Grid = Object.freeze({ depth: 16, height: 48, width: 48 });

/** Input channels (symptomatic, contralateral half) and the three conv widths. */
export const INPUT_CHANNELS = 2;
export const CONV_LAYERS = [
  { name: 'conv1', inChannels: 2, outChannels: 8 },
  { name: 'conv2', inChannels: 8, outChannels: 16 },
  { name: 'conv3', inChannels: 16, outChannels: 32 },
] as const;
export const KERNEL_SIZE = 3;
export const FC1_UNITS = 64;

/** Plan options whose grid the model cannot use (exit 3). */
export class GridInvalid extends FedgitError {
  static override readonly exit = EXIT.invalid;
  constructor(message: string, grid: unknown) {
    super('GRID_INVALID', message, { grid });
  }
}

/** Throws GridInvalid unless D and H are positive multiples of 8 and W a positive multiple of 16. */
export function validateGrid(grid: Grid): Grid {
  const { depth, height, width } = grid ?? ({} as Grid);
  const bad: string[] = [];
  const check = (label: string, v: unknown, multiple: number) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0 || v % multiple !== 0) {
      bad.push(`${label} = ${String(v)} must be a positive multiple of ${multiple}`);
    }
  };
  check('depth (D)', depth, 8);
  check('height (H)', height, 8);
  check('width (W)', width, 16);
  if (bad.length > 0) {
    throw new GridInvalid(`invalid ${ASPECTS_ARCHITECTURE} grid ${JSON.stringify(grid)}: ${bad.join('; ')} (three 2×2×2 poolings of the [D, H, W/2] half-volume)`, grid);
  }
  return grid;
}

/** Shape of one input volume, channels-last: [D, H, W/2, 2]. */
export function inputShape(grid: Grid): [number, number, number, number] {
  validateGrid(grid);
  return [grid.depth, grid.height, grid.width / 2, INPUT_CHANNELS];
}

/** Values in one input volume. */
export function inputSize(grid: Grid): number {
  return inputShape(grid).reduce((a, b) => a * b, 1);
}

/** Shape [D/8, H/8, W/16, 32] of the feature map that is flattened into fc1. */
export function featureShape(grid: Grid): [number, number, number, number] {
  validateGrid(grid);
  return [grid.depth / 8, grid.height / 8, grid.width / 16, CONV_LAYERS[2].outChannels];
}

/** fc1 input size = (D/8)·(H/8)·(W/16)·32. */
export function fc1InputSize(grid: Grid): number {
  return featureShape(grid).reduce((a, b) => a * b, 1);
}

/** fc1 input index of feature (d, h, w, c): channels-last flatten. */
export function flattenIndex(grid: Grid, d: number, h: number, w: number, c: number): number {
  const [, H, W, C] = featureShape(grid);
  return ((d * H + h) * W + w) * C + c;
}

export type TensorSpec = { readonly name: string; readonly shape: readonly number[] };

/** Tensor names and canonical shapes, in MODEL.md order (also the initialisation order). */
export function aspectsTensorSpec(grid: Grid = DEFAULT_ASPECTS_GRID): TensorSpec[] {
  const k = KERNEL_SIZE;
  const spec: TensorSpec[] = [];
  for (const { name, inChannels, outChannels } of CONV_LAYERS) {
    spec.push({ name: `${name}.weight`, shape: [outChannels, inChannels, k, k, k] });
    spec.push({ name: `${name}.bias`, shape: [outChannels] });
  }
  spec.push({ name: 'fc1.weight', shape: [FC1_UNITS, fc1InputSize(grid)] });
  spec.push({ name: 'fc1.bias', shape: [FC1_UNITS] });
  spec.push({ name: 'fc2.weight', shape: [REGION_COUNT, FC1_UNITS] });
  spec.push({ name: 'fc2.bias', shape: [REGION_COUNT] });
  return spec;
}

/** The initialisation's random numbers: mulberry32 (edge-app/random.ts), seed taken modulo 2^32. */
export { mulberry32 };

/** fan_in of a weight tensor: in·27 for conv kernels [out, in, 3, 3, 3], in for dense [out, in]. */
function fanIn(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}

/**
 * Initial weights, identical in every engine: one mulberry32 stream seeded
 * with `seed`, drawn in tensor order then row-major element order; kernels
 * U(−b, b) with b = √(6 / fan_in), value = (2u − 1)·b in float64 rounded to
 * float32; biases 0 (no draws).
 */
export function initialAspectsWeights(seed: number, grid: Grid = DEFAULT_ASPECTS_GRID): Tensors {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const random = mulberry32(seed);
  const out = new Map<string, Tensor>();
  for (const { name, shape } of aspectsTensorSpec(grid)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (name.endsWith('.weight')) {
      const bound = Math.sqrt(6 / fanIn(shape));
      for (let i = 0; i < size; i++) data[i] = (2 * random() - 1) * bound;
    }
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/**
 * Throws GridInvalid/RangeError unless `weights` has exactly the tensors of
 * aspectsTensorSpec(grid) with the right shapes. Returns the weights.
 */
export function checkAspectsWeights(weights: Tensors, grid: Grid = DEFAULT_ASPECTS_GRID): Tensors {
  const spec = aspectsTensorSpec(grid);
  const problems: string[] = [];
  for (const { name, shape } of spec) {
    const t = weights.get(name);
    if (t === undefined) {
      problems.push(`missing ${name}`);
    } else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    } else if (t.data.length !== shape.reduce((a, b) => a * b, 1)) {
      problems.push(`${name} has ${t.data.length} values for shape [${shape.join(', ')}]`);
    }
  }
  const known = new Set(spec.map((s) => s.name));
  for (const name of weights.keys()) if (!known.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length > 0) {
    throw new RangeError(`weights do not match ${ASPECTS_ARCHITECTURE} at grid ${grid.depth}×${grid.height}×${grid.width}: ${problems.join('; ')}`);
  }
  return weights;
}
