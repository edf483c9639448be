/**
 * edge-app/python/aspects_torch.py driven by the command adapter, as an edge
 * would run it: init, train and evaluate on a small NIfTI data folder.
 * Needs python3 with torch, numpy and nibabel ($FEDGIT_PYTHON picks the interpreter).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCommandApp } from '../edge-app/command/command-app.js';
import { splitSamples } from '../edge-app/aspects/app.js';
import { ASPECTS_ARCHITECTURE, aspectsTensorSpec, checkAspectsWeights, initialAspectsWeights, mulberry32, type Grid } from '../edge-app/aspects/spec.js';
import { writeNifti } from '../edge-app/nifti/index.js';
import type { EdgeApp } from '../operator/contracts.js';
import { AppFailed } from '../operator/errors.js';
import { PYTHON, TORCH_SCRIPT, requireTorch } from './helpers/python.js';

const SCRIPT = TORCH_SCRIPT;
const GRID: Grid = { depth: 8, height: 16, width: 16 };
const REGIONS = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'];

let root: string;
let dataDir: string;
const ids: string[] = [];

before(async () => {
  requireTorch('PyTorch command tests');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fedgit-torch-command-'));
  dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir);
  // 10 coarse volumes covering the model box; "affected" ones are darker on the symptomatic side.
  const dims: [number, number, number] = [48, 64, 12];
  const affine = [3, 0, 0, -72, 0, 3, 0, -104, 0, 0, 8, -20, 0, 0, 0, 1];
  const rows = ['file,hemisphere,' + REGIONS.join(',')];
  const random = mulberry32(4);
  for (let n = 0; n < 10; n++) {
    const id = n % 2 === 0 ? `case-${n}.nii.gz` : `case-${n}.nii`;
    const hemisphere = n % 3 === 0 ? 'R' : 'L';
    const affected = n % 2 === 0;
    const hu = new Float32Array(dims[0] * dims[1] * dims[2]);
    for (let i = 0; i < hu.length; i++) {
      const x = i % dims[0];
      const symptomatic = hemisphere === 'L' ? x < dims[0] / 2 : x >= dims[0] / 2;
      hu[i] = 35 + 5 * (random() - 0.5) - (affected && symptomatic ? 6 : 0);
    }
    await writeNifti(path.join(dataDir, id), { dims, hu, affine, description: id }, { datatype: 'int16', sclSlope: 1, sclInter: 0 });
    rows.push(`${id},${hemisphere},${REGIONS.map((_, k) => (affected && k < 5 ? 1 : 0)).join(',')}`);
    ids.push(id);
  }
  fs.writeFileSync(path.join(dataDir, 'labels.csv'), rows.join('\n') + '\n');
});
after(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

function torchApp(extraEnv: Record<string, string> = {}): EdgeApp {
  return createCommandApp({
    command: [PYTHON, SCRIPT],
    dataDir,
    architecture: ASPECTS_ARCHITECTURE,
    env: { FEDGIT_GRID: `${GRID.depth}x${GRID.height}x${GRID.width}`, FEDGIT_THREADS: '2', FEDGIT_BATCH_SIZE: '4', ...extraEnv },
    spec: aspectsTensorSpec(GRID),
    validate: (t) => void checkAspectsWeights(t, GRID),
    retries: 0,
    timeoutMs: 120_000,
  });
}

describe('aspects_torch.py through the command adapter', () => {
  it('init gives the engine-independent initial weights', async () => {
    const weights = await torchApp().initialWeights(77);
    for (const [name, t] of initialAspectsWeights(77, GRID)) {
      assert.deepEqual([...weights.get(name)!.data], [...t.data], name);
    }
  });

  /** The TypeScript app's split of this cohort (sorted by (fnv1a32(file), file), first round(n·fraction)). */
  const tsSplit = (fraction: number) => splitSamples(ids.map((id) => ({ id })), fraction);

  it("train: the TypeScript app's split (fraction 0.2), weights move, metrics per region", async () => {
    const start = initialAspectsWeights(3, GRID);
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
    checkAspectsWeights(result.weights, GRID);
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
    const metrics = await torchApp().evaluate(initialAspectsWeights(3, GRID), new AbortController().signal);
    assert.equal(typeof metrics.loss, 'number');
    assert.ok((metrics.samples as number) > 0);
    assert.deepEqual(Object.keys(metrics.auc as object), REGIONS);
  });

  it('validation size follows the TypeScript rule, half rounding up (10 × 0.25 → 3)', async () => {
    const metrics = await torchApp({ FEDGIT_VALIDATION_FRACTION: '0.25' }).evaluate(initialAspectsWeights(3, GRID), new AbortController().signal);
    assert.equal(tsSplit(0.25).validation.length, 3);
    assert.equal(metrics.samples, 3);
    assert.equal(metrics.split, 'validation');
  });

  it('weights for another grid are refused with the reason on stderr', async () => {
    const wrong = initialAspectsWeights(3, { depth: 16, height: 48, width: 48 });
    await assert.rejects(torchApp().evaluate(wrong, new AbortController().signal), (e: unknown) => {
      assert.ok(e instanceof AppFailed);
      assert.match(e.message, /exited with code 1/);
      assert.match(e.message, /fc1\.weight has shape \[64, 1152\], expected \[64, 64\]/);
      return true;
    });
  });
});
