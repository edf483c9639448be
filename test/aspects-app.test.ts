import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAspectsApp, evaluateSamples, splitSamples, type AspectsSample } from '../edge-app/aspects/app.js';
import { ASPECTS_ARCHITECTURE, initialAspectsWeights, inputSize, mulberry32, type Grid } from '../edge-app/aspects/spec.js';
import type { TrainRequest } from '../operator/contracts.js';
import { Aborted } from '../operator/errors.js';

const TINY: Grid = { depth: 8, height: 8, width: 16 };

function cohort(n: number): AspectsSample[] {
  const random = mulberry32(3);
  return Array.from({ length: n }, (_, i) => {
    const positive = i % 2 === 0;
    return {
      id: `case-${String(i).padStart(3, '0')}.nii.gz`,
      input: Float32Array.from({ length: inputSize(TINY) }, () => (positive ? 0.4 : -0.4) + 0.3 * (2 * random() - 1)),
      labels: Uint8Array.from({ length: 10 }, (_, k) => (positive && k < 4 ? 1 : 0)),
      hemisphere: i % 3 === 0 ? 'R' : 'L',
    };
  });
}

describe('aspects app', () => {
  it('splits by id hash: stable, independent of order, 20 %', () => {
    const samples = cohort(20);
    const a = splitSamples(samples, 0.2);
    const b = splitSamples([...samples].reverse(), 0.2);
    assert.equal(a.validation.length, 4);
    assert.equal(a.train.length, 16);
    assert.deepEqual(a.validation.map((s) => s.id).sort(), b.validation.map((s) => s.id).sort());
    assert.deepEqual(splitSamples(samples.slice(0, 1), 0.5).train.length, 1);
    assert.throws(() => splitSamples(samples, 1), RangeError);
  });

  it('trains from the given weights, reports global and local metrics on validation', async () => {
    const samples = cohort(10);
    let loads = 0;
    const app = createAspectsApp({
      dataDir: '/nowhere',
      grid: TINY,
      learningRate: 3e-3,
      loadSamples: async (dir, grid) => {
        loads++;
        assert.equal(dir, '/nowhere');
        assert.deepEqual(grid, TINY);
        return samples;
      },
    });
    assert.equal(app.architecture, ASPECTS_ARCHITECTURE);
    const initial = await app.initialWeights(5);
    assert.deepEqual(initial.get('conv1.weight')!.data, initialAspectsWeights(5, TINY).get('conv1.weight')!.data);
    const progress: number[] = [];
    const request: TrainRequest = { weights: initial, epochs: 2, round: 1, planId: 'p', seed: 5, signal: new AbortController().signal, onProgress: (_m, f) => progress.push(f ?? -1) };
    const result = await app.train(request);
    assert.equal(result.datasetSize, 8);
    assert.equal(result.metrics.global.n, 2);
    assert.equal(result.metrics.local.n, 2);
    assert.equal(result.metrics.local.steps, 4);
    assert.equal(typeof result.metrics.local.trainLoss, 'number');
    assert.notDeepEqual(result.weights.get('fc2.bias')!.data, initial.get('fc2.bias')!.data);
    assert.ok(progress.at(-1) === 1);
    const again = await app.train(request);
    assert.deepEqual(again.weights.get('conv1.weight')!.data, result.weights.get('conv1.weight')!.data, 'same request, same bytes');
    const evaluated = await app.evaluate(result.weights, new AbortController().signal);
    const { trainLoss: _loss, steps: _steps, ...validationMetrics } = result.metrics.local;
    assert.deepEqual(evaluated, validationMetrics);
    const split = splitSamples(samples, 0.2);
    assert.deepEqual(evaluateSamples(result.weights, split.validation, TINY), evaluated);
    assert.equal(loads, 1, 'the cohort is loaded once');

    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(app.train({ ...request, signal: aborted.signal }), Aborted);
    await assert.rejects(app.evaluate(initial, aborted.signal), Aborted);
    await app.close();
  });
});
