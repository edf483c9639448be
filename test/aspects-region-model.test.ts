/**
 * aspects-region/v3 in TensorFlow.js: deterministic initialisation, the
 * forward pass against a plain-JavaScript evaluation of the MODEL.md formula,
 * learning a per-region rule, no leaked tensors, and the edge app on
 * in-memory samples.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { createRegionApp, evaluateRegionSamples } from '../edge-app/aspects/region-app.js';
import { RegionTrainer, forwardRegions } from '../edge-app/aspects/region-model.js';
import { FEATURE_COUNT, REGION_ARCHITECTURE, REGION_COUNT, checkRegionWeights, initialRegionWeights, regionTensorSpec } from '../edge-app/aspects/region-spec.js';
import type { RegionSample } from '../edge-app/preprocess/region-cohort.js';
import { mulberry32 } from '../edge-app/random.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import type { Tensors } from '../operator/contracts.js';

before(async () => {
  await selectBackend();
});

/** MODEL.md's network in plain float64 JavaScript. */
function reference(weights: Tensors, x: Float32Array, batch: number): number[] {
  const w1 = weights.get('fc1.weight')!, b1 = weights.get('fc1.bias')!.data, e = weights.get('region.embedding')!.data;
  const w2 = weights.get('fc2.weight')!.data, b2 = weights.get('fc2.bias')!.data[0]!, c = weights.get('region.bias')!.data;
  const h = w1.shape[0]!;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) for (let r = 0; r < REGION_COUNT; r++) {
    let logit = b2 + c[r]!;
    for (let u = 0; u < h; u++) {
      let z = b1[u]! + e[r * h + u]!;
      for (let f = 0; f < FEATURE_COUNT; f++) z += w1.data[u * FEATURE_COUNT + f]! * x[(b * REGION_COUNT + r) * FEATURE_COUNT + f]!;
      logit += w2[u]! * Math.max(0, z);
    }
    out.push(1 / (1 + Math.exp(-logit)));
  }
  return out;
}

/** Samples where region r is affected iff its first feature < −0.3 + 0.05·r (a per-region threshold). */
function samples(n: number, seed: number): RegionSample[] {
  const random = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const input = Float32Array.from({ length: REGION_COUNT * FEATURE_COUNT }, () => 2 * random() - 1);
    const labels = Uint8Array.from({ length: REGION_COUNT }, (_, r) => (input[r * FEATURE_COUNT]! < -0.3 + 0.05 * r ? 1 : 0));
    return { id: `v${i}.nii.gz`, input, labels, hemisphere: i % 2 ? 'L' : 'R' };
  });
}

describe('aspects-region/v3 model (TensorFlow.js)', () => {
  it('initial weights: deterministic from the seed, the spec shapes, biases and embedding zero', () => {
    const a = initialRegionWeights(7, 16), b = initialRegionWeights(7, 16), c = initialRegionWeights(8, 16);
    assert.deepEqual([...a.keys()], regionTensorSpec(16).map((s) => s.name));
    checkRegionWeights(a, 16);
    for (const [name, t] of a) {
      assert.deepEqual(t.data, b.get(name)!.data, name);
      if (name === 'fc1.weight' || name === 'fc2.weight') {
        assert.notDeepEqual(t.data, c.get(name)!.data, name);
        const bound = Math.sqrt(6 / t.shape[1]!);
        assert.ok([...t.data].every((v) => Math.abs(v) <= bound), name);
      } else {
        assert.ok(t.data.every((v) => v === 0), name);
      }
    }
    assert.throws(() => checkRegionWeights(a, 32), /fc1.weight has shape \[16, 12\], expected \[32, 12\]/);
  });

  it('forward equals the MODEL.md formula evaluated in plain JavaScript (|Δ| ≤ 1e-6)', () => {
    const random = mulberry32(3);
    const weights = new Map([...initialRegionWeights(3, 8)].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data, (v) => v + (random() - 0.5) * 0.4) }]));
    const batch = 3;
    const x = Float32Array.from({ length: batch * REGION_COUNT * FEATURE_COUNT }, () => 4 * random() - 2);
    const got = forwardRegions(weights, x, batch, 8);
    const want = reference(weights, x, batch);
    want.forEach((p, i) => assert.ok(Math.abs(p - got[i]!) <= 1e-6, `output ${i}: ${got[i]} vs ${p}`));
    assert.ok(want.some((p) => p > 0.1 && p < 0.9));
  });

  it('learns per-region thresholds; live tensors stay flat after a warm-up', async () => {
    const train = samples(200, 1), test = samples(100, 2);
    const trainer = new RegionTrainer(initialRegionWeights(1), { learningRate: 1e-2 });
    try {
      await trainer.fit(train.slice(0, 8), { epochs: 1, seed: 1, batchSize: 8, learningRate: 1e-2 });
      const before = tf.memory().numTensors;
      const fit = await trainer.fit(train, { epochs: 30, seed: 2, batchSize: 8, learningRate: 1e-2 });
      trainer.predict(test.map((s) => s.input));
      assert.equal(tf.memory().numTensors, before);
      assert.ok(fit.epochLosses.at(-1)! < fit.epochLosses[0]! * 0.6, `losses ${fit.epochLosses[0]} → ${fit.epochLosses.at(-1)}`);
      const m = evaluateRegionSamples(trainer.getWeights(), test);
      assert.ok((m.macroAuc as number) > 0.95, `macro AUC ${m.macroAuc}`);
    } finally {
      trainer.dispose();
    }
  });

  it('the edge app trains from the given weights on the training split and reports validation metrics', async () => {
    const data = samples(50, 4);
    const app = createRegionApp({ dataDir: '/nonexistent', loadSamples: async () => data, batchSize: 8, learningRate: 1e-2 });
    assert.equal(app.architecture, REGION_ARCHITECTURE);
    const weights = await app.initialWeights(5);
    const result = await app.train({ weights, epochs: 2, seed: 5, round: 1, planId: "p", signal: new AbortController().signal });
    assert.equal(result.datasetSize, 40);
    checkRegionWeights(result.weights);
    assert.notDeepEqual(result.weights.get('fc1.weight')!.data, weights.get('fc1.weight')!.data);
    assert.equal((result.metrics.local as { n?: number }).n, 10);
    await app.close();
  });
});
