import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { addBias, bceWithLogits, conv3dBias, dense, logits, maxPool2 } from '../edge-app/aspects/layers.js';
import { AspectsTrainer, adamStep, aspectsLoss, canonicalToTfjs, forward, permute, predictVolumes, shuffledIndices, tfjsToCanonical } from '../edge-app/aspects/model.js';
import { aspectsTensorSpec, flattenIndex, initialAspectsWeights, inputSize, mulberry32, type Grid } from '../edge-app/aspects/spec.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import type { Tensor } from '../operator/contracts.js';
import { Aborted } from '../operator/errors.js';

const TINY: Grid = { depth: 8, height: 8, width: 16 };

before(async () => {
  await selectBackend();
});

function randomArray(n: number, random: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);
}

/**
 * Central differences of objective(inputs) = Σ f(inputs)·R (R fixed random),
 * computed in float64 from float32 outputs, against tf.grads, at `coords`
 * coordinates of every input.
 */
function gradCheck(
  name: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: { shape: number[]; data: Float32Array }[],
  options: { eps?: number; coords?: number; tolerance?: number; skip?: (input: number, index: number) => boolean } = {},
): void {
  const { eps = 1e-2, coords = 6, tolerance = 1e-2 } = options;
  const random = mulberry32(99);
  const outShape = tf.tidy(() => f(...inputs.map((x) => tf.tensor(x.data, x.shape))).shape);
  const r = randomArray(outShape.reduce((a, b) => a * b, 1), random);
  const objective = (datas: Float32Array[]): number => {
    const out = tf.tidy(() => f(...datas.map((d, i) => tf.tensor(d, inputs[i]!.shape))));
    const v = out.dataSync();
    out.dispose();
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i]! * r[i]!;
    return s;
  };
  const grads = tf.tidy(() => {
    // dy = R: the vector–Jacobian product needs only the model's own gradients
    return tf.grads((...xs: tf.Tensor[]) => f(...xs))(inputs.map((x) => tf.tensor(x.data, x.shape)), tf.tensor(r, outShape));
  });
  const analytic = grads.map((g) => g.dataSync().slice());
  tf.dispose(grads);
  inputs.forEach((input, k) => {
    // absolute floor: 1 % of the largest gradient of this input
    const floor = Math.max(1e-6, ...Array.from(analytic[k]!, Math.abs));
    let checked = 0;
    for (let attempt = 0; checked < Math.min(coords, input.data.length) && attempt < 50 * coords; attempt++) {
      const i = Math.floor(random() * input.data.length);
      if (options.skip?.(k, i)) continue;
      const plus = inputs.map((x) => x.data.slice());
      const minus = inputs.map((x) => x.data.slice());
      plus[k]![i]! += eps;
      minus[k]![i]! -= eps;
      const numeric = (objective(plus) - objective(minus)) / (2 * eps);
      const a = analytic[k]![i]!;
      const scale = Math.max(Math.abs(a), Math.abs(numeric), floor);
      assert.ok(Math.abs(a - numeric) / scale < tolerance, `${name}: input ${k}[${i}] analytic ${a} vs numeric ${numeric}`);
      checked++;
    }
    assert.ok(checked > 0, `${name}: no coordinate of input ${k} checked`);
  });
}

describe('aspects model: gradients against central differences (tiny grid)', () => {
  const random = mulberry32(5);
  const x = { shape: [2, 8, 8, 8, 2], data: randomArray(2 * 8 * 8 * 8 * 2, random) };

  it('conv3d + bias (input, kernel, bias)', () => {
    gradCheck(
      'conv3dBias',
      (xx, k, b) => conv3dBias(xx as tf.Tensor5D, k!, b!),
      [x, { shape: [3, 3, 3, 2, 4], data: randomArray(216, random, 0.3) }, { shape: [4], data: randomArray(4, random, 0.1) }],
    );
  });

  it('relu (away from the kink)', () => {
    const data = randomArray(64, random);
    gradCheck('relu', (xx) => tf.relu(xx!), [{ shape: [64], data }], { coords: 20, skip: (_, i) => Math.abs(data[i]!) < 0.05 });
  });

  it('max-pool 2×2×2 (distinct values, so the argmax does not move)', () => {
    const n = 2 * 4 * 4 * 4 * 3;
    const order = shuffledIndices(n, random);
    const data = Float32Array.from(order, (v) => v * 0.05 - 2);
    gradCheck('maxPool2', (xx) => maxPool2(xx as tf.Tensor5D), [{ shape: [2, 4, 4, 4, 3], data }], { coords: 30 });
  });

  it('max-pool gradient goes to the first maximum of a tied window, like PyTorch', () => {
    const g = tf.tidy(() => tf.grad((xx: tf.Tensor) => maxPool2(xx as tf.Tensor5D))(tf.ones([1, 2, 2, 2, 1]), tf.ones([1, 1, 1, 1, 1])).dataSync().slice());
    assert.deepEqual([...g], [1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('dense (input, kernel, bias)', () => {
    gradCheck(
      'dense',
      (xx, k, b) => dense(xx as tf.Tensor2D, k!, b!),
      [{ shape: [3, 5], data: randomArray(15, random) }, { shape: [5, 4], data: randomArray(20, random) }, { shape: [4], data: randomArray(4, random) }],
    );
  });

  it('sigmoid binary cross-entropy on logits', () => {
    const labels = Float32Array.from({ length: 20 }, (_, i) => i % 3 === 0 ? 1 : 0);
    gradCheck('bce', (z) => bceWithLogits(z!, tf.tensor(labels, [2, 10])), [{ shape: [2, 10], data: randomArray(20, random, 4) }], { coords: 20, eps: 1e-3 });
    // value: mean of −log σ(z) / −log(1 − σ(z))
    const z = Float32Array.from([2, -1, 0, 0.5]);
    const y = Float32Array.from([1, 0, 1, 0]);
    const expected = [Math.log1p(Math.exp(-2)), Math.log1p(Math.exp(-1)), Math.log(2), Math.log1p(Math.exp(0.5))].reduce((a, b) => a + b) / 4;
    const v = tf.tidy(() => bceWithLogits(tf.tensor(z, [1, 4]), tf.tensor(y, [1, 4])).dataSync()[0]!);
    assert.ok(Math.abs(v - expected) < 1e-6);
  });

  it('bias add over a 5-D tensor', () => {
    gradCheck('addBias', (xx, b) => addBias(xx!, b!), [{ shape: [2, 2, 2, 2, 3], data: randomArray(48, random) }, { shape: [3], data: randomArray(3, random) }]);
  });

  it('the whole network: every parameter tensor', () => {
    const weights = initialAspectsWeights(3, TINY);
    const names = aspectsTensorSpec(TINY).map((s) => s.name);
    const params = names.map((n) => {
      const t = canonicalToTfjs(weights.get(n)!);
      // non-zero biases so their gradients are exercised away from symmetric points
      const data = n.endsWith('.bias') ? randomArray(t.data.length, random, 0.05) : t.data;
      return { shape: [...t.shape], data };
    });
    const labels = tf.tensor(Float32Array.from({ length: 20 }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0), [2, 10]);
    try {
      gradCheck(
        'network',
        (xx, ...ps) => bceWithLogits(logits(new Map(names.map((n, i) => [n, ps[i]!])), xx as tf.Tensor5D), labels),
        [x, ...params],
        { eps: 1e-3, coords: 3, tolerance: 5e-2 },
      );
    } finally {
      labels.dispose();
    }
  });
});

describe('aspects model: layouts', () => {
  it('permute follows shape[perm[i]]', () => {
    const t = permute(Float32Array.from([0, 1, 2, 3, 4, 5]), [2, 3], [1, 0]);
    assert.deepEqual(t.shape, [3, 2]);
    assert.deepEqual([...t.data], [0, 3, 1, 4, 2, 5]);
  });

  it('conv kernels: [out, in, kd, kh, kw] ↔ [kd, kh, kw, in, out], hand-checked element', () => {
    const shape = [4, 3, 3, 3, 3];
    const data = Float32Array.from({ length: 324 }, (_, i) => i);
    const tfjs = canonicalToTfjs({ shape, data });
    assert.deepEqual(tfjs.shape, [3, 3, 3, 3, 4]);
    // canonical (o=2, i=1, kd=0, kh=2, kw=1) at ((((2·3+1)·3+0)·3+2)·3+1) = 196
    // tfjs (kd=0, kh=2, kw=1, i=1, o=2) at ((((0·3+2)·3+1)·3+1)·4+2) = 90
    assert.equal(data[196], 196);
    assert.equal(tfjs.data[90], 196);
    assert.deepEqual(tfjsToCanonical(tfjs), { shape, data });
  });

  it('dense kernels: [out, in] ↔ [in, out]; biases unchanged; round trip of every tensor', () => {
    const w = initialAspectsWeights(11, TINY);
    for (const [name, t] of w) {
      const back = tfjsToCanonical(canonicalToTfjs(t));
      assert.deepEqual(back.shape, [...t.shape], name);
      assert.deepEqual(back.data, t.data, name);
    }
    const d = canonicalToTfjs({ shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    assert.deepEqual(d.shape, [3, 2]);
    assert.deepEqual([...d.data], [1, 4, 2, 5, 3, 6]);
  });

  it('fc1.weight columns follow the channels-last flatten (hand-built network)', () => {
    // conv1: input channel 0 → channel 0 (centre tap); conv2: 0 → 0; conv3: 0 → 5.
    // One voxel of 2.0 at (d, h, w) = (5, 2, 6) pools to feature (0, 0, 0)… choose one that lands elsewhere:
    // feature index (d/8, h/8, w/8) for the half-volume [8, 8, 8]: all map to (0, 0, 0) at TINY,
    // so use a grid with several feature cells.
    const grid: Grid = { depth: 16, height: 16, width: 32 }; // half volume [16, 16, 16], features [2, 2, 2, 32]
    const w = new Map<string, Tensor>();
    for (const { name, shape } of aspectsTensorSpec(grid)) w.set(name, { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const at = (name: string, index: number[], value: number) => {
      const t = w.get(name)!;
      let flat = 0;
      index.forEach((v, i) => (flat = flat * t.shape[i]! + v));
      t.data[flat] = value;
    };
    at('conv1.weight', [0, 0, 1, 1, 1], 1);
    at('conv2.weight', [0, 0, 1, 1, 1], 1);
    at('conv3.weight', [5, 0, 1, 1, 1], 1);
    const [d, h, x] = [9, 3, 12]; // → feature cell (1, 0, 1)
    const target = flattenIndex(grid, 1, 0, 1, 5);
    at('fc1.weight', [0, target], 1);
    at('fc2.weight', [0, 0], 1);
    const input = new Float32Array(inputSize(grid));
    input[((d * 16 + h) * 16 + x) * 2 + 0] = 2;
    const p = forward(w, input, 1, grid);
    assert.ok(Math.abs(p[0]! - 1 / (1 + Math.exp(-2))) < 1e-6, `output 0 = σ(2), got ${p[0]}`);
    for (let k = 1; k < 10; k++) assert.equal(p[k], 0.5);
    // the same weight one feature cell over sees nothing
    w.get('fc1.weight')!.data.fill(0);
    at('fc1.weight', [0, flattenIndex(grid, 1, 0, 0, 5)], 1);
    assert.equal(forward(w, input, 1, grid)[0], 0.5);
  });
});

describe('aspects model: training', () => {
  /** Separable: bright volumes have every region affected, dark ones none. */
  function separable(n: number, grid: Grid) {
    const random = mulberry32(21);
    return Array.from({ length: n }, (_, i) => {
      const positive = i % 2 === 0;
      const input = Float32Array.from({ length: inputSize(grid) }, () => (positive ? 0.5 : -0.5) + 0.2 * (2 * random() - 1));
      return { id: `v${i}`, input, labels: new Uint8Array(10).fill(positive ? 1 : 0) };
    });
  }

  it('loss decreases on a trivially separable set; forward and predict agree', async () => {
    const samples = separable(8, TINY);
    const trainer = new AspectsTrainer(initialAspectsWeights(1, TINY), { grid: TINY });
    try {
      const fit = await trainer.fit(samples, { epochs: 6, batchSize: 4, learningRate: 3e-3, seed: 1 });
      assert.equal(fit.steps, 12);
      assert.ok(fit.epochLosses[5]! < 0.5 * fit.epochLosses[0]!, `losses ${fit.epochLosses.map((l) => l.toFixed(3)).join(' ')}`);
      const weights = trainer.getWeights();
      const p1 = trainer.predict(samples.map((s) => s.input));
      const p2 = predictVolumes(weights, samples.map((s) => s.input), TINY, 3);
      const p3 = forward(weights, samples[0]!.input, 1, TINY);
      for (let i = 0; i < p1.length; i++) assert.ok(Math.abs(p1[i]! - p2[i]!) < 1e-6);
      for (let i = 0; i < 10; i++) assert.ok(Math.abs(p1[i]! - p3[i]!) < 1e-6);
      assert.ok(p1[0]! > 0.5 && p1[10]! < 0.5, 'separates the two classes');
    } finally {
      trainer.dispose();
    }
  });

  it('fit is deterministic for a seed', async () => {
    const samples = separable(6, TINY);
    const run = async (seed: number) => {
      const t = new AspectsTrainer(initialAspectsWeights(2, TINY), { grid: TINY });
      try {
        await t.fit(samples, { epochs: 2, batchSize: 4, seed });
        return t.getWeights().get('fc2.weight')!.data;
      } finally {
        t.dispose();
      }
    };
    assert.deepEqual(await run(4), await run(4));
    assert.notDeepEqual(await run(4), await run(5));
  });

  it('adamStep is one fresh Adam step: |Δw| ≈ lr wherever the gradient is non-zero', () => {
    const random = mulberry32(8);
    const weights = initialAspectsWeights(9, TINY);
    const inputs = randomArray(2 * inputSize(TINY), random);
    const labels = Uint8Array.from({ length: 20 }, (_, i) => i % 2);
    const next = adamStep(weights, inputs, labels, 1e-3, TINY);
    // first Adam step: m̂ = g, v̂ = g², Δ = −lr·g/(|g| + ε) — magnitude lr unless g ≈ 0
    const delta = next.get('fc2.bias')!.data.map((v, i) => v - weights.get('fc2.bias')!.data[i]!);
    for (const d of delta) assert.ok(Math.abs(Math.abs(d) - 1e-3) < 2e-5, `Δ ${d}`);
    assert.ok(aspectsLoss(next, inputs, labels, TINY) < aspectsLoss(weights, inputs, labels, TINY));
  });

  it('holds no tensors after warm-up: flat across steps, predictions and forward', async () => {
    const samples = separable(4, TINY);
    const trainer = new AspectsTrainer(initialAspectsWeights(1, TINY), { grid: TINY });
    const inputs = new Float32Array(4 * inputSize(TINY));
    samples.forEach((s, i) => inputs.set(s.input, i * inputSize(TINY)));
    const labels = new Uint8Array(40).fill(1);
    try {
      trainer.trainStep(inputs, labels); // creates the Adam moments
      trainer.predict(samples.map((s) => s.input));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        trainer.trainStep(inputs, labels);
        trainer.predict(samples.map((s) => s.input));
        forward(trainer.getWeights(), inputs, 4, TINY);
        aspectsLoss(trainer.getWeights(), inputs, labels, TINY);
        assert.equal(tf.memory().numTensors, before, `step ${i}`);
      }
      await trainer.fit(samples, { epochs: 1, seed: 1 });
      assert.equal(tf.memory().numTensors, before, 'after a fit (fresh optimiser)');
    } finally {
      const live = tf.memory().numTensors;
      trainer.dispose();
      assert.ok(tf.memory().numTensors < live, 'dispose releases the variables');
    }
    const start = tf.memory().numTensors;
    adamStep(initialAspectsWeights(1, TINY), inputs, labels, 1e-3, TINY);
    assert.equal(tf.memory().numTensors, start, 'adamStep leaks nothing');
  });

  it('stops with Aborted when the signal fires', async () => {
    const samples = separable(12, TINY);
    const trainer = new AspectsTrainer(initialAspectsWeights(1, TINY), { grid: TINY });
    try {
      const before = new AbortController();
      before.abort();
      await assert.rejects(trainer.fit(samples, { epochs: 1, seed: 1, signal: before.signal }), Aborted);
      const during = new AbortController();
      let steps = 0;
      await assert.rejects(
        trainer.fit(samples, { epochs: 5, seed: 1, signal: during.signal, onProgress: () => (++steps === 2 ? during.abort() : undefined) }),
        (e: unknown) => e instanceof Aborted && e.code === 'ABORTED',
      );
      assert.equal(steps, 2);
    } finally {
      trainer.dispose();
    }
  });

  it('refuses inputs of the wrong size', () => {
    const trainer = new AspectsTrainer(initialAspectsWeights(1, TINY), { grid: TINY });
    try {
      assert.throws(() => trainer.trainStep(new Float32Array(10), new Uint8Array(10)), /inputs hold 10 values/);
    } finally {
      trainer.dispose();
    }
    assert.throws(() => forward(initialAspectsWeights(1), new Float32Array(inputSize(TINY)), 1, TINY), /fc1\.weight has shape/);
  });
});
