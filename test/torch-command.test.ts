/**
 * edge-app/python/aspects_torch.py driven by the command adapter, as an edge
 * would run it: init, train and evaluate aspects-region/v3 on the features
 * file the adapter hands over ($FEDGIT_FEATURES, CONTRACT.md). The features
 * here are made up (region r affected iff its first feature is low); that
 * fedgit computes them from scans is tested in test/mixed-federation.test.ts.
 * Needs python3 with torch and numpy ($FEDGIT_PYTHON picks the interpreter).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCommandApp } from '../edge-app/command/command-app.js';
import { splitSamples } from '../edge-app/aspects/app.js';
import { renderFeaturesFile } from '../edge-app/aspects/region-features-file.js';
import { FEATURE_COUNT, REGION_ARCHITECTURE, checkRegionWeights, initialRegionWeights, regionTensorSpec } from '../edge-app/aspects/region-spec.js';
import type { RegionSample } from '../edge-app/preprocess/region-cohort.js';
import { mulberry32 } from '../edge-app/random.js';
import type { EdgeApp } from '../operator/contracts.js';
import { AppFailed } from '../operator/errors.js';
import { PYTHON, TORCH_SCRIPT, requireTorch } from './helpers/python.js';

const SCRIPT = TORCH_SCRIPT;
const REGIONS = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'];

let root: string;
let dataDir: string;
const ids: string[] = [];
let features: Buffer;

before(async () => {
  requireTorch('PyTorch command tests');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fedgit-torch-command-'));
  dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir);
  const random = mulberry32(4);
  const samples: RegionSample[] = [];
  for (let n = 0; n < 10; n++) {
    const id = n % 2 === 0 ? `case-${n}.nii.gz` : `case-${n}.nii`;
    const input = Float32Array.from({ length: 10 * FEATURE_COUNT }, () => 2 * random() - 1);
    const labels = Uint8Array.from({ length: 10 }, (_, r) => (input[r * FEATURE_COUNT]! < -0.2 ? 1 : 0));
    samples.push({ id, input, labels, hemisphere: n % 3 === 0 ? 'R' : 'L' });
    ids.push(id);
  }
  features = renderFeaturesFile(samples);
});
after(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

function torchApp(extraEnv: Record<string, string> = {}): EdgeApp {
  return createCommandApp({
    command: [PYTHON, SCRIPT],
    dataDir,
    architecture: REGION_ARCHITECTURE,
    env: { FEDGIT_THREADS: '2', FEDGIT_BATCH_SIZE: '4', ...extraEnv },
    spec: regionTensorSpec(),
    validate: (t) => void checkRegionWeights(t),
    prepareInputs: async (workDir) => {
      const file = path.join(workDir, 'features.safetensors');
      fs.writeFileSync(file, features);
      return { FEDGIT_FEATURES: file };
    },
    retries: 0,
    timeoutMs: 120_000,
  });
}

describe('aspects_torch.py through the command adapter', () => {
  it('init gives the engine-independent initial weights', async () => {
    const weights = await torchApp().initialWeights(77);
    for (const [name, t] of initialRegionWeights(77)) {
      assert.deepEqual([...weights.get(name)!.data], [...t.data], name);
    }
  });

  /** The TypeScript app's split of this cohort (sorted by (fnv1a32(file), file), first round(n·fraction)). */
  const tsSplit = (fraction: number) => splitSamples(ids.map((id) => ({ id })), fraction);

  it("train: the TypeScript app's split (fraction 0.2), weights move, metrics per region", async () => {
    const start = initialRegionWeights(3);
    const progress: number[] = [];
    const result = await torchApp({ FEDGIT_LR: '0.003' }).train({
      weights: start, epochs: 3, round: 1, planId: 'p', seed: 9, signal: new AbortController().signal,
      onProgress: (_m, f) => f !== undefined && progress.push(f),
    });
    const expected = tsSplit(0.2);
    assert.equal(expected.validation.length, 2);
    assert.equal(result.datasetSize, expected.train.length);
    assert.equal(result.metrics.local.samples, expected.validation.length);
    assert.equal(result.metrics.local.split, 'validation');
    checkRegionWeights(result.weights);
    const moved = [...start].some(([name, t]) => t.data.some((v, i) => v !== result.weights.get(name)!.data[i]));
    assert.ok(moved, 'training changed the weights');
    for (const m of [result.metrics.global, result.metrics.local]) {
      assert.equal(typeof m.loss, 'number');
      assert.equal(typeof m.accuracy, 'number');
      assert.deepEqual(Object.keys(m.auc as object), REGIONS);
    }
    assert.ok(progress.length > 0 && progress.at(-1)! > 0.9, `progress ${progress.join(', ')}`);
  });

  it('evaluate gives loss, accuracy and per-region AUC', async () => {
    const metrics = await torchApp().evaluate(initialRegionWeights(3), new AbortController().signal);
    assert.equal(typeof metrics.loss, 'number');
    assert.ok((metrics.samples as number) > 0);
    assert.deepEqual(Object.keys(metrics.auc as object), REGIONS);
  });

  it('validation size follows the TypeScript rule, half rounding up (10 × 0.25 → 3)', async () => {
    const metrics = await torchApp({ FEDGIT_VALIDATION_FRACTION: '0.25' }).evaluate(initialRegionWeights(3), new AbortController().signal);
    assert.equal(tsSplit(0.25).validation.length, 3);
    assert.equal(metrics.samples, 3);
    assert.equal(metrics.split, 'validation');
  });

  it('weights of another size are refused with the reason on stderr', async () => {
    const random = mulberry32(9);
    const wrong = new Map([...initialRegionWeights(3)].map(([k, t]) => [k, k === 'fc1.weight' ? { shape: [32, 5], data: Float32Array.from({ length: 160 }, () => random()) } : t]));
    await assert.rejects(torchApp().evaluate(wrong, new AbortController().signal), (e: unknown) => {
      assert.ok(e instanceof AppFailed);
      assert.match(e.message, /exited with code 1/);
      assert.match(e.message, /12 features per region, the weights expect 5/);
      return true;
    });
  });
});
