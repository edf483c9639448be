/**
 * aspects-region/v3 as data: tensor names and shapes in the canonical
 * (PyTorch) layout and the engine-independent initialisation. No TensorFlow.js
 * here: the registry, the aggregator and the command adapter import this. The
 * contract is MODEL.md.
 */
import type { Tensor, Tensors } from '../../sdk/index.js';
import { FEATURE_COUNT, REGION_COUNT } from '../preprocess/region-features.js';
import { mulberry32 } from '../random.js';

export const REGION_ARCHITECTURE = 'aspects-region/v3';
export { FEATURE_COUNT, REGION_COUNT };

/** Hidden units of the shared per-region MLP (plan option `hidden`). */
export const DEFAULT_HIDDEN = 32;
export const MAX_HIDDEN = 256;

export type TensorSpec = { readonly name: string; readonly shape: readonly number[] };

/** Values in one model input: [10 regions, FEATURE_COUNT]. */
export const REGION_INPUT_SIZE = REGION_COUNT * FEATURE_COUNT;

function checkHidden(hidden: number): number {
  if (!Number.isSafeInteger(hidden) || hidden < 1 || hidden > MAX_HIDDEN) throw new RangeError(`hidden must be an integer in 1…${MAX_HIDDEN}, got ${hidden}`);
  return hidden;
}

/** Tensor names and canonical shapes in MODEL.md order (also the initialisation order). */
export function regionTensorSpec(hidden: number = DEFAULT_HIDDEN): TensorSpec[] {
  const h = checkHidden(hidden);
  return [
    { name: 'fc1.weight', shape: [h, FEATURE_COUNT] },
    { name: 'fc1.bias', shape: [h] },
    { name: 'region.embedding', shape: [REGION_COUNT, h] },
    { name: 'fc2.weight', shape: [1, h] },
    { name: 'fc2.bias', shape: [1] },
    { name: 'region.bias', shape: [REGION_COUNT] },
  ];
}

/** The dense kernels (transposed between the PyTorch and TF.js layouts); everything else is a bias. */
export const DENSE_KERNELS: ReadonlySet<string> = new Set(['fc1.weight', 'fc2.weight']);

/**
 * Initial weights, identical in every engine: one mulberry32 stream seeded
 * with `seed` (mod 2³²), drawn for the dense kernels in tensor order then
 * row-major order; value (2u − 1)·√(6 / fan_in) in float64 rounded to float32,
 * fan_in = the kernel's second dimension. Biases and the region embedding are
 * 0 (no draws).
 */
export function initialRegionWeights(seed: number, hidden: number = DEFAULT_HIDDEN): Tensors {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const random = mulberry32(seed);
  const out = new Map<string, Tensor>();
  for (const { name, shape } of regionTensorSpec(hidden)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (DENSE_KERNELS.has(name)) {
      const bound = Math.sqrt(6 / shape[1]!);
      for (let i = 0; i < size; i++) data[i] = (2 * random() - 1) * bound;
    }
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/** Throws RangeError unless `weights` has exactly the tensors of regionTensorSpec(hidden). Returns the weights. */
export function checkRegionWeights(weights: Tensors, hidden: number = DEFAULT_HIDDEN): Tensors {
  const spec = regionTensorSpec(hidden);
  const problems: string[] = [];
  for (const { name, shape } of spec) {
    const t = weights.get(name);
    if (t === undefined) problems.push(`missing ${name}`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) problems.push(`${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    else if (t.data.length !== shape.reduce((a, b) => a * b, 1)) problems.push(`${name} has ${t.data.length} values for shape [${shape.join(', ')}]`);
  }
  const known = new Set(spec.map((s) => s.name));
  for (const name of weights.keys()) if (!known.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length > 0) throw new RangeError(`weights do not match ${REGION_ARCHITECTURE} (hidden ${hidden}): ${problems.join('; ')}`);
  return weights;
}
