/**
 * Gradients for the kernels aspects-cnn/v2 uses. The Node bundle of
 * @tensorflow/tfjs-core registers no gradients (the union package
 * @tensorflow/tfjs does, and tfjs-layers is not installed), so without this
 * tf.grad fails with "gradient function not found". Each config is
 * registered only if none exists yet, so a loaded @tensorflow/tfjs (e.g. via
 * tfjs-node) keeps its own. Max-pooling and the loss do not go through the
 * registry: they are tf.customGrad functions in layers.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

type Conv3DAttrs = { strides: [number, number, number] | number; pad: 'valid' | 'same'; dilations?: unknown };
type MatMulAttrs = { transposeA: boolean; transposeB: boolean };

/** Sum `dy` over the axes that broadcasting added or stretched, so it has `shape` again. */
function unbroadcast(dy: Tensor, shape: readonly number[]): Tensor {
  const axes = tf.backend_util.getReductionAxes(shape as number[], dy.shape);
  const reduced = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(reduced, shape as number[]);
}

const configs: GradConfig[] = [
  {
    kernelName: 'Conv3D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [x, filter] = saved as [Tensor, Tensor];
      const { strides, pad, dilations } = attrs as unknown as Conv3DAttrs;
      const one = (v: unknown) => v === undefined || v === 1 || (Array.isArray(v) && v.every((d) => d === 1));
      if (!one(dilations)) throw new Error('conv3d gradient: dilations > 1 are not supported');
      return {
        x: () => tf.engine().runKernel('Conv3DBackpropInputV2', { dy: dy as Tensor, filter }, { strides, pad, inputShape: x.shape } as unknown as NamedAttrMap) as Tensor,
        filter: () => tf.engine().runKernel('Conv3DBackpropFilterV2', { x, dy: dy as Tensor }, { strides, pad, filterShape: filter.shape } as unknown as NamedAttrMap) as Tensor,
      };
    },
  },
  {
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
      const [x] = saved as [Tensor];
      return { x: () => tf.mul(dy as Tensor, tf.step(x)) };
    },
  },
  {
    kernelName: 'Reshape',
    inputsToSave: ['x'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
      const [x] = saved as [Tensor];
      return { x: () => tf.reshape(dy as Tensor, x.shape) };
    },
  },
  {
    kernelName: 'Add',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
      const [a, b] = saved as [Tensor, Tensor];
      return { a: () => unbroadcast(dy as Tensor, a.shape), b: () => unbroadcast(dy as Tensor, b.shape) };
    },
  },
  {
    // Rank-2 operands only (all the model needs).
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [a, b] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
      if (a.rank !== 2 || b.rank !== 2) throw new Error('matMul gradient: only rank-2 operands are supported');
      if (!transposeA && !transposeB) return { a: () => tf.matMul(g, b, false, true), b: () => tf.matMul(a, g, true, false) };
      if (!transposeA && transposeB) return { a: () => tf.matMul(g, b, false, false), b: () => tf.matMul(g, a, true, false) };
      if (transposeA && !transposeB) return { a: () => tf.matMul(b, g, false, true), b: () => tf.matMul(a, g, false, false) };
      return { a: () => tf.matMul(b, g, true, true), b: () => tf.matMul(g, a, true, true) };
    },
  },
];

let registered = false;

/** Register the missing gradient configs (idempotent). */
export function ensureGradients(): void {
  if (registered) return;
  for (const config of configs) {
    if (tf.getGradient(config.kernelName) === undefined) tf.registerGradient(config);
  }
  registered = true;
}
