/**
 * PyTorch reference (edge-app/python/aspects_torch.py) against the
 * TensorFlow.js model (edge-app/aspects/region-model.ts), aspects-region/v3:
 * same safetensors in, same numbers out. Needs python3 with torch and numpy
 * (Debian: python3-torch); $FEDGIT_PYTHON picks the interpreter. Without them
 * these tests fail with a message saying so: parity is part of the contract.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { forwardRegions, regionAdamStep } from '../edge-app/aspects/region-model.js';
import { FEATURE_COUNT, REGION_COUNT, initialRegionWeights } from '../edge-app/aspects/region-spec.js';
import { selectBackend } from '../edge-app/tf-backend.js';
import { parseSafetensors, renderSafetensors } from '../operator/checkpoint/safetensors.js';
import type { Tensor, Tensors } from '../operator/contracts.js';
import { requireTorch, runTorchAction } from './helpers/python.js';
import { randomArray, testWeights } from './helpers/region-weights.js';


let dir: string;
before(async () => {
  requireTorch('PyTorch parity tests');
  await selectBackend();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedgit-torch-test-'));
});
after(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

const torch = runTorchAction;

function writeTensors(file: string, tensors: Record<string, Tensor> | Tensors): string {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  fs.writeFileSync(file, renderSafetensors(map));
  return file;
}

function readTensors(file: string): Tensors {
  return parseSafetensors(fs.readFileSync(file), file).tensors;
}

const inputCount = (batch: number): number => batch * REGION_COUNT * FEATURE_COUNT;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('PyTorch reference vs TensorFlow.js', () => {
  it('init: the same bytes as initialRegionWeights', async () => {
    const out = path.join(dir, 'init.safetensors');
    await torch('init', { FEDGIT_SEED: '20240601', FEDGIT_OUTPUT_WEIGHTS: out });
    const py = readTensors(out);
    const ts = initialRegionWeights(20240601);
    assert.deepEqual([...py.keys()].sort(), [...ts.keys()].sort());
    for (const [name, t] of ts) {
      assert.deepEqual(py.get(name)!.shape, t.shape, name);
      // A parsed tensor may be a view on the file's bytes: compare its own bytes, not its whole buffer.
      const bytes = (data: Float32Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      assert.equal(Buffer.compare(bytes(py.get(name)!.data), bytes(t.data)), 0, `${name} differs`);
    }
  });

  it('forward: the same 10 probabilities per volume (|Δ| ≤ 1e-6), batch 5', async (t) => {
    const batch = 5;
    const weights = testWeights(3);
    const inputs = randomArray(inputCount(batch), 99, -3, 3);
    const wFile = writeTensors(path.join(dir, 'fw-weights.safetensors'), weights);
    const iFile = writeTensors(path.join(dir, 'fw-input.safetensors'), {
      input: { shape: [batch, REGION_COUNT, FEATURE_COUNT], data: inputs },
    });
    const oFile = path.join(dir, 'fw-out.safetensors');
    await torch('forward', { FEDGIT_INPUT_WEIGHTS: wFile, FEDGIT_INPUT: iFile, FEDGIT_OUTPUT: oFile });
    const py = readTensors(oFile).get('probs')!;
    assert.deepEqual(py.shape, [batch, 10]);
    const tf = forwardRegions(weights, inputs, batch);
    const diff = maxAbsDiff(py.data, tf);
    // Outputs must not be saturated, or the comparison says little.
    assert.ok([...tf].some((p) => p > 0.05 && p < 0.95), `probabilities ${[...tf].map((p) => p.toFixed(3)).join(' ')}`);
    t.diagnostic(`max |p_torch − p_tfjs| = ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-6, `max |p_torch − p_tfjs| = ${diff}`);
  });

  it('one Adam step from fresh state moves every weight the same way (|Δw_torch − Δw_tfjs| ≤ 2e-4·lr where |g| ≥ 1e-5, ≤ 1e-3·lr everywhere)', async (t) => {
    // A first Adam step is Δw = −lr·g/(|g| + ε) ≈ −lr·sign(g): robust where |g| ≫ ε = 1e-7, but
    // where |g| is near ε float32 rounding in g moves Δw by lr·δg/(|g|+ε). So: strict where
    // |g| ≥ 1e-5 (torch's gradient), looser elsewhere. Measured: worst 3e-5·lr and 7e-5·lr
    // (float32 rounding of w itself is ~4e-6·lr at |w| ≈ 0.05).
    const batch = 4;
    const lr = 1e-3;
    const weights = testWeights(5);
    const inputs = randomArray(inputCount(batch), 7, -3, 3);
    const labels = Float32Array.from(randomArray(batch * 10, 8, 0, 1), (u) => (u < 0.4 ? 1 : 0));
    const wFile = writeTensors(path.join(dir, 'st-weights.safetensors'), weights);
    const iFile = writeTensors(path.join(dir, 'st-input.safetensors'), {
      input: { shape: [batch, REGION_COUNT, FEATURE_COUNT], data: inputs },
      labels: { shape: [batch, 10], data: labels },
    });
    const owFile = path.join(dir, 'st-out-weights.safetensors');
    const oFile = path.join(dir, 'st-out.safetensors');
    await torch('step', { FEDGIT_INPUT_WEIGHTS: wFile, FEDGIT_INPUT: iFile, FEDGIT_OUTPUT_WEIGHTS: owFile, FEDGIT_OUTPUT: oFile, FEDGIT_LR: String(lr) });
    const py = readTensors(owFile);
    const extra = readTensors(oFile);
    const tf = regionAdamStep(weights, inputs, labels, lr);

    let strict = 0, worstStrict = 0, sumDiff = 0, count = 0, moved = 0;
    const report: string[] = [];
    for (const [name, w0] of weights) {
      const a = py.get(name)!.data, b = tf.get(name)!.data, g = extra.get(`grad.${name}`)!.data;
      let worst = 0;
      for (let i = 0; i < w0.data.length; i++) {
        const dPy = a[i]! - w0.data[i]!, dTf = b[i]! - w0.data[i]!;
        const diff = Math.abs(dPy - dTf);
        assert.ok(Math.abs(dTf) <= lr * 1.001 && Math.abs(dPy) <= lr * 1.001, `${name}[${i}] moved more than lr`);
        if (Math.abs(dPy) > lr / 2) moved++;
        sumDiff += diff;
        assert.ok(diff <= 1e-3 * lr, `${name}[${i}]: Δw torch ${dPy}, tfjs ${dTf}, g ${g[i]}`);
        count++;
        worst = Math.max(worst, diff);
        if (Math.abs(g[i]!) >= 1e-5) {
          strict++;
          worstStrict = Math.max(worstStrict, diff);
          assert.ok(diff <= 2e-4 * lr, `${name}[${i}]: Δw torch ${dPy}, tfjs ${dTf}, g ${g[i]}`);
        }
      }
      report.push(`${name} ${(worst / lr).toExponential(1)}`);
    }
    t.diagnostic(`${strict}/${count} weights with |g| ≥ 1e-5, worst |Δw diff|/lr there ${(worstStrict / lr).toExponential(2)}; mean over all ${(sumDiff / count / lr).toExponential(2)}; worst/lr per tensor: ${report.join(', ')}`);
    assert.ok(strict > count / 3, `only ${strict} of ${count} weights have |g| ≥ 1e-5`);
    assert.ok(moved > count / 2, `only ${moved} of ${count} weights moved`);
    assert.ok(sumDiff / count <= 1e-4 * lr, `mean |Δw_torch − Δw_tfjs| = ${sumDiff / count} (worst/lr per tensor: ${report.join(', ')})`);
  });

});
