/**
 * The aspects-cnn/v2 network as tfjs-core ops (channels-last NDHWC), plus
 * the two pieces with hand-written gradients: 2×2×2 max-pooling (the cpu
 * backend's MaxPool3DGrad is slow, and PyTorch's first-maximum rule is easy
 * to match exactly) and the binary cross-entropy on logits.
 * Parameter maps use the canonical names with tensors in the tfjs layout
 * (conv [kd, kh, kw, in, out], dense [in, out]).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ensureGradients } from './gradients.js';

export type TfParams = ReadonlyMap<string, tf.Tensor>;

function param(params: TfParams, name: string): tf.Tensor {
  const t = params.get(name);
  if (t === undefined) throw new Error(`missing parameter ${name}`);
  return t;
}

/** conv3d 3×3×3, stride 1, zero "same" padding, + bias. */
export function conv3dBias(x: tf.Tensor5D, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor5D {
  return addBias(tf.conv3d(x, kernel as tf.Tensor5D, 1, 'same'), bias);
}

/**
 * x + bias along the last axis. The bias gradient (a sum over every other
 * axis) is a plain loop: the cpu backend's Sum over leading axes transposes first.
 */
export const addBias: <T extends tf.Tensor>(x: T, bias: tf.Tensor) => T = (() => {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor;
    const bias = args[1] as tf.Tensor;
    if (bias.rank !== 1 || x.shape[x.rank - 1] !== bias.shape[0]) throw new Error(`bias of shape [${bias.shape}] does not match the last axis of [${x.shape}]`);
    return {
      value: tf.add(x, bias),
      gradFunc: (dy: tf.Tensor) => [tf.clone(dy), tf.tensor1d(sumRows(dy.dataSync() as Float32Array, bias.shape[0]!))],
    };
  });
  return <T extends tf.Tensor>(x: T, bias: tf.Tensor) => op(x, bias) as T;
})();

/** Column sums of a row-major [n, width] array, accumulated in float64. */
function sumRows(values: Float32Array, width: number): Float32Array {
  const acc = new Float64Array(width);
  for (let i = 0, c = 0; i < values.length; i++) {
    acc[c]! += values[i]!;
    if (++c === width) c = 0;
  }
  return Float32Array.from(acc);
}

/**
 * Max-pool 2×2×2, stride 2, no padding (every dimension even). The gradient
 * goes to the first maximum of each window in (d, h, w) order, like PyTorch.
 */
export const maxPool2: (x: tf.Tensor5D) => tf.Tensor5D = (() => {
  const pool = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const x = args[0] as tf.Tensor5D;
    const save = args[1] as tf.GradSaveFunc;
    const y = tf.maxPool3d(x, 2, 2, 'valid');
    save([x, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sy] = saved as [tf.Tensor5D, tf.Tensor5D];
        return tf.tensor(maxPool2Backward(sx.shape, sx.dataSync() as Float32Array, sy.dataSync() as Float32Array, dy.dataSync() as Float32Array), sx.shape);
      },
    };
  });
  return (x: tf.Tensor5D) => pool(x) as tf.Tensor5D;
})();

/** Plain loops: dx for a 2×2×2/2 max-pool given x [B, D, H, W, C], y and dy [B, D/2, H/2, W/2, C]. */
export function maxPool2Backward(shape: readonly number[], x: Float32Array, y: Float32Array, dy: Float32Array): Float32Array {
  const [B, D, H, W, C] = shape as [number, number, number, number, number];
  const oD = D >> 1, oH = H >> 1, oW = W >> 1;
  const sW = C, sH = W * C, sD = H * W * C, sB = D * H * W * C;
  const dx = new Float32Array(x.length);
  let o = 0;
  for (let b = 0; b < B; b++) {
    for (let od = 0; od < oD; od++) {
      for (let oh = 0; oh < oH; oh++) {
        for (let ow = 0; ow < oW; ow++) {
          const corner = b * sB + 2 * od * sD + 2 * oh * sH + 2 * ow * sW;
          for (let c = 0; c < C; c++, o++) {
            const g = dy[o]!;
            if (g === 0) continue;
            const m = y[o]!;
            let found = -1;
            for (let kd = 0; kd < 2 && found < 0; kd++) {
              for (let kh = 0; kh < 2 && found < 0; kh++) {
                for (let kw = 0; kw < 2; kw++) {
                  const i = corner + kd * sD + kh * sH + kw * sW + c;
                  if (x[i] === m) {
                    found = i;
                    break;
                  }
                }
              }
            }
            if (found >= 0) dx[found]! += g;
          }
        }
      }
    }
  }
  return dx;
}

/**
 * Mean binary cross-entropy over all elements, from logits (numerically
 * stable form max(z, 0) − z·y + log(1 + e^−|z|)); gradient (σ(z) − y) / N.
 */
export const bceWithLogits: (logits: tf.Tensor, labels: tf.Tensor) => tf.Scalar = (() => {
  const loss = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const z = args[0] as tf.Tensor;
    const y = args[1] as tf.Tensor;
    const save = args[2] as tf.GradSaveFunc;
    save([z, y]);
    const value = tf.mean(tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))))) as tf.Scalar;
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sz, sy] = saved as [tf.Tensor, tf.Tensor];
        return [tf.mul(dy, tf.div(tf.sub(tf.sigmoid(sz), sy), sz.size)), tf.zerosLike(sy)];
      },
    };
  });
  return (logits: tf.Tensor, labels: tf.Tensor) => loss(logits, labels) as tf.Scalar;
})();

/** Dense layer: x [N, in] · kernel [in, out] + bias. */
export function dense(x: tf.Tensor2D, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
  return addBias(tf.matMul(x, kernel as tf.Tensor2D), bias);
}

/** Logits [N, 10] for inputs x [N, D, H, W/2, 2]. */
export function logits(params: TfParams, x: tf.Tensor5D): tf.Tensor2D {
  ensureGradients();
  let h = x;
  for (const name of ['conv1', 'conv2', 'conv3']) {
    h = maxPool2(tf.relu(conv3dBias(h, param(params, `${name}.weight`), param(params, `${name}.bias`))));
  }
  const flat = tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D; // channels-last flatten
  const hidden = tf.relu(dense(flat, param(params, 'fc1.weight'), param(params, 'fc1.bias')));
  return dense(hidden, param(params, 'fc2.weight'), param(params, 'fc2.bias'));
}

ensureGradients();
