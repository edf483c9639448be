/**
 * FedProx in both ASPECTS engines (MODEL.md, "Training"): the PyTorch reference
 * (edge-app/python/aspects_torch.py) against the TensorFlow.js trainer
 * (edge-app/aspects/region-model.ts) with μ > 0, at the tolerances of
 * test/torch-parity.test.ts: outputs 1e-6, one Adam step 2e-4·lr where |g| ≥ 1e-5
 * (1e-4·lr on average). The step starts away from w_global, else the proximal
 * term has no gradient. Then the reference through the command contract: it
 * receives μ in FEDGIT_PROXIMAL_MU and says so in its metrics.
 * Needs python3 with torch and numpy ($FEDGIT_PYTHON picks the interpreter).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tfCore from '@tensorflow/tfjs-core';
import { RegionTrainer, forwardRegions, regionStep } from '../edge-app/aspects/region-model.js';
import { FEATURE_COUNT, REGION_ARCHITECTURE, REGION_COUNT, checkRegionWeights, initialRegionWeights, regionTensorSpec } from '../edge-app/aspects/region-spec.js';
import { renderFeaturesFile } from '../edge-app/aspects/region-features-file.js';
import { createCommandApp } from '../edge-app/command/command-app.js';
import type { RegionSample } from '../edge-app/preprocess/region-cohort.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import { parseSafetensors, renderSafetensors } from '../operator/checkpoint/safetensors.js';
import type { Tensor, Tensors } from '../operator/contracts.js';
import { PYTHON, TORCH_SCRIPT, requireTorch, runTorchAction } from './helpers/python.js';
import { randomArray, testWeights } from './helpers/region-weights.js';

const MU = 0.05;
const LR = 1e-3;
const BATCH = 4;

let dir: string;
before(async () => {
  requireTorch('FedProx parity tests');
  await selectBackend();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedgit-fedprox-torch-'));
});
after(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

const torch = runTorchAction;

const file = (name: string) => path.join(dir, name);
function writeTensors(name: string, tensors: Record<string, Tensor> | Tensors): string {
  fs.writeFileSync(file(name), renderSafetensors(tensors instanceof Map ? tensors : new Map(Object.entries(tensors))));
  return file(name);
}
const readTensors = (name: string): Tensors => parseSafetensors(fs.readFileSync(file(name)), name).tensors;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The batch, w0 (the weights the step starts from) and w_global, written for the script. */
function stepInputs() {
  const start = testWeights(5);
  const global = testWeights(6);
  const inputs = randomArray(BATCH * REGION_COUNT * FEATURE_COUNT, 7, -3, 3);
  const labels = Float32Array.from(randomArray(BATCH * 10, 8, 0, 1), (u) => (u < 0.4 ? 1 : 0));
  const env = {
    FEDGIT_INPUT_WEIGHTS: writeTensors('w0.safetensors', start),
    FEDGIT_GLOBAL_WEIGHTS: writeTensors('wg.safetensors', global),
    FEDGIT_INPUT: writeTensors('batch.safetensors', { input: { shape: [BATCH, REGION_COUNT, FEATURE_COUNT], data: inputs }, labels: { shape: [BATCH, 10], data: labels } }),
    FEDGIT_LR: String(LR),
  };
  return { start, global, inputs, labels, env };
}

/** Torch's step with μ (or 0): stepped weights, data loss, proximal value, gradients. */
async function torchStep(env: Record<string, string>, mu: number, tag: string) {
  await torch('step', { ...env, FEDGIT_PROXIMAL_MU: String(mu), FEDGIT_OUTPUT_WEIGHTS: file(`${tag}-w.safetensors`), FEDGIT_OUTPUT: file(`${tag}-out.safetensors`) });
  const out = readTensors(`${tag}-out.safetensors`);
  return { weights: readTensors(`${tag}-w.safetensors`), loss: out.get('loss')!.data[0]!, proximal: out.get('proximal')!.data[0]!, grad: (name: string) => out.get(`grad.${name}`)!.data };
}

describe('FedProx: PyTorch reference vs TensorFlow.js (μ = 0.05)', () => {
  it('the proximal term: (μ/2)·‖w0 − w_global‖² and its gradient μ·(w0 − w_global), on top of the data gradient', async (t) => {
    const { start, global, env } = stepInputs();
    const prox = await torchStep(env, MU, 'g-prox');
    const plain = await torchStep(env, 0, 'g-plain');
    let squared = 0;
    let worst = 0;
    for (const [name, w0] of start) {
      const wg = global.get(name)!.data;
      const withMu = prox.grad(name), without = plain.grad(name);
      for (let i = 0; i < w0.data.length; i++) {
        squared += (w0.data[i]! - wg[i]!) ** 2;
        worst = Math.max(worst, Math.abs(withMu[i]! - without[i]! - MU * (w0.data[i]! - wg[i]!)));
      }
    }
    t.diagnostic(`(μ/2)·‖w0 − w_global‖² = ${(MU / 2 * squared).toFixed(6)} (torch ${prox.proximal.toFixed(6)}); worst |Δgrad − μ·(w0 − w_global)| = ${worst.toExponential(2)}`);
    assert.ok(Math.abs(prox.proximal - (MU / 2) * squared) <= 1e-6 * Math.max(1, (MU / 2) * squared), `proximal value ${prox.proximal} vs ${(MU / 2) * squared}`);
    assert.ok(worst <= 1e-6, `worst gradient difference ${worst}`);
    assert.equal(prox.loss, plain.loss, 'the reported loss is the data loss');
  });

  it('one FedProx Adam step from w0 ≠ w_global moves every weight the same way in both engines; the data loss and the stepped models\' outputs agree to 1e-6', async (t) => {
    const { start, global, inputs, labels, env } = stepInputs();
    const py = await torchStep(env, MU, 'step');
    const tf = regionStep(start, inputs, labels, { learningRate: LR, proximalMu: MU, globalWeights: global });
    const tfPlain = regionStep(start, inputs, labels, { learningRate: LR });
    assert.ok(Math.abs(py.loss - tf.loss) <= 1e-6, `data loss torch ${py.loss}, tfjs ${tf.loss}`);

    let strict = 0, worstStrict = 0, sumDiff = 0, count = 0, turned = 0;
    for (const [name, w0] of start) {
      const a = py.weights.get(name)!.data, b = tf.weights.get(name)!.data, plain = tfPlain.weights.get(name)!.data, g = py.grad(name);
      for (let i = 0; i < w0.data.length; i++) {
        const dPy = a[i]! - w0.data[i]!, dTf = b[i]! - w0.data[i]!;
        const diff = Math.abs(dPy - dTf);
        assert.ok(Math.abs(dTf) <= LR * 1.001 && Math.abs(dPy) <= LR * 1.001, `${name}[${i}] moved more than lr`);
        assert.ok(diff <= 1e-3 * LR, `${name}[${i}]: Δw torch ${dPy}, tfjs ${dTf}, g ${g[i]}`);
        if (Math.sign(dTf) !== Math.sign(plain[i]! - w0.data[i]!)) turned++;
        sumDiff += diff;
        count++;
        if (Math.abs(g[i]!) >= 1e-5) {
          strict++;
          worstStrict = Math.max(worstStrict, diff);
          assert.ok(diff <= 2e-4 * LR, `${name}[${i}]: Δw torch ${dPy}, tfjs ${dTf}, g ${g[i]}`);
        }
      }
    }
    // The outputs of the two stepped models, each in its own engine.
    const probe = randomArray(5 * REGION_COUNT * FEATURE_COUNT, 99, -3, 3);
    await torch('forward', { FEDGIT_INPUT_WEIGHTS: writeTensors('stepped-py.safetensors', py.weights), FEDGIT_INPUT: writeTensors('probe.safetensors', { input: { shape: [5, REGION_COUNT, FEATURE_COUNT], data: probe } }), FEDGIT_OUTPUT: file('probe-out.safetensors') });
    const outputDiff = maxAbsDiff(readTensors('probe-out.safetensors').get('probs')!.data, forwardRegions(tf.weights, probe, 5));
    t.diagnostic(`${strict}/${count} weights with |g| ≥ 1e-5, worst |Δw diff|/lr there ${(worstStrict / LR).toExponential(2)}, mean ${(sumDiff / count / LR).toExponential(2)}; the term turned ${turned} of ${count} steps against FedAvg's; outputs max |Δp| ${outputDiff.toExponential(2)}`);
    assert.ok(strict > count / 3, `only ${strict} of ${count} weights have |g| ≥ 1e-5`);
    assert.ok(sumDiff / count <= 1e-4 * LR, `mean |Δw_torch − Δw_tfjs| = ${sumDiff / count}`);
    assert.ok(turned > count / 20, `the proximal term changed the direction of only ${turned} of ${count} steps: the test would not see it`);
    assert.ok(outputDiff <= 1e-6, `outputs differ by ${outputDiff}`);
  });

  it('the TF.js FedProx step allocates nothing that outlives it: live tensors stay flat after a warm-up step', async () => {
    const { start, global, inputs, labels } = stepInputs();
    const trainer = new RegionTrainer(start, { learningRate: LR, proximalMu: MU, globalWeights: global });
    try {
      trainer.trainStep(inputs, labels); // warm-up: Adam creates its moment variables
      const before = tfCore.memory().numTensors;
      for (let i = 0; i < 5; i++) trainer.trainStep(inputs, labels);
      assert.equal(tfCore.memory().numTensors, before);
    } finally {
      trainer.dispose();
    }
  });

  it('the reference through the command contract: FEDGIT_PROXIMAL_MU reaches it, it confirms μ in its metrics, and its model stays nearer w_global', async () => {
    const samples: RegionSample[] = Array.from({ length: 10 }, (_, n) => {
      const input = randomArray(10 * FEATURE_COUNT, 40 + n);
      return { id: `case-${n}.nii`, input, labels: Uint8Array.from({ length: 10 }, (_, r) => (input[r * FEATURE_COUNT]! < -0.2 ? 1 : 0)), hemisphere: 'L' };
    });
    const features = renderFeaturesFile(samples);
    const app = createCommandApp({
      command: [PYTHON, TORCH_SCRIPT], dataDir: dir, architecture: REGION_ARCHITECTURE, retries: 0,
      env: { FEDGIT_THREADS: '2', FEDGIT_BATCH_SIZE: '4', FEDGIT_LR: '0.01' },
      spec: regionTensorSpec(), validate: (w) => void checkRegionWeights(w),
      prepareInputs: async (workDir) => {
        fs.writeFileSync(path.join(workDir, 'features.safetensors'), features);
        return { FEDGIT_FEATURES: path.join(workDir, 'features.safetensors') };
      },
    });
    const global = initialRegionWeights(3);
    const train = (proximalMu?: number) => app.train({ weights: global, epochs: 5, round: 1, planId: 'p', seed: 9, signal: new AbortController().signal, ...(proximalMu !== undefined ? { proximalMu } : {}) });
    const plain = await train();
    const prox = await train(1);
    assert.equal(prox.metrics.local.proximalMu, 1);
    assert.equal(plain.metrics.local.proximalMu, undefined);
    const distance = (w: Tensors) => Math.hypot(...[...global].flatMap(([name, t]) => [...t.data].map((v, i) => w.get(name)!.data[i]! - v)));
    assert.ok(distance(prox.weights) < distance(plain.weights), `‖w − w_global‖: FedProx ${distance(prox.weights)}, FedAvg ${distance(plain.weights)}`);
    await app.close();
  });
});
