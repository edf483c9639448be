/**
 * DP-FedAvg with PyTorch edges: two hospitals each run edge-app/python/aspects_torch.py through the
 * external-command adapter (made-up features, as in torch-command.test.ts: registering scans is
 * tested elsewhere), the real aggregator merges with clipping and noise, and every merge audits —
 * bit for bit with the round's seed, and by the noise statistics without it. Needs python3 with
 * torch and numpy ($FEDGIT_PYTHON picks the interpreter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { createCommandApp } from '../edge-app/command/command-app.js';
import { renderFeaturesFile } from '../edge-app/aspects/region-features-file.js';
import { FEATURE_COUNT, REGION_ARCHITECTURE, checkRegionWeights, regionTensorSpec } from '../edge-app/aspects/region-spec.js';
import type { RegionSample } from '../edge-app/preprocess/region-cohort.js';
import { mulberry32 } from '../edge-app/random.js';
import { epsilonAfter } from '../operator/privacy/rdp-accountant.js';
import { readFinalTag } from '../operator/store/federation.js';
import { PYTHON, TORCH_SCRIPT, requireTorch } from './helpers/python.js';
import { failures, startDpFederation } from './helpers/dp-federation.js';

/** Ten made-up cases: region r is affected iff its first feature is low. */
function madeUpFeatures(seed: number): Buffer {
  const random = mulberry32(seed);
  const samples: RegionSample[] = Array.from({ length: 10 }, (_, n) => {
    const input = Float32Array.from({ length: 10 * FEATURE_COUNT }, () => 2 * random() - 1);
    return { id: `case-${n}.nii.gz`, input, labels: Uint8Array.from({ length: 10 }, (_, r) => (input[r * FEATURE_COUNT]! < -0.2 ? 1 : 0)), hemisphere: n % 2 ? 'R' : 'L' };
  });
  return renderFeaturesFile(samples);
}

const PLAN = `name: dp-torch
rounds: 2
edges: [hospital-a, hospital-b]
seed: 3
app: { id: aspects-cnn, options: { batchSize: 4, learningRate: 0.003 } }
privacy: { targetEpsilon: 8, delta: 0.00001, noiseMultiplier: 2, clipNorm: 0.05 }
`;

test('DP-FedAvg over two PyTorch edges (external command): 2 rounds, every merge audits with and without the seed', async (t) => {
  requireTorch('the DP test with PyTorch edges');
  const fed = await startDpFederation(t, PLAN, {
    createApp: async (edge, { log, dir }) => {
      const dataDir = path.join(dir, 'data', edge);
      await mkdir(dataDir, { recursive: true });
      const features = madeUpFeatures(edge === 'hospital-a' ? 4 : 5);
      return createCommandApp({
        command: [PYTHON, TORCH_SCRIPT],
        dataDir,
        architecture: REGION_ARCHITECTURE,
        env: { FEDGIT_THREADS: '1', FEDGIT_BATCH_SIZE: '4', FEDGIT_LR: '0.003' },
        spec: regionTensorSpec(),
        validate: (w) => void checkRegionWeights(w),
        prepareInputs: async (workDir) => {
          const file = path.join(workDir, 'features.safetensors');
          await writeFile(file, features);
          return { FEDGIT_FEATURES: file };
        },
        log, retries: 0, timeoutMs: 120_000,
      });
    },
  });
  for (let r = 1; r <= 2; r++) {
    const merge = await fed.round();
    assert.equal(merge.round, r, fed.lines.join('\n'));
    assert.deepEqual(merge.merged.map((m) => [m.edge, m.weight]), [['hospital-a', 0.5], ['hospital-b', 0.5]]);
    assert.ok((merge.clipped ?? []).length > 0, 'clipNorm 0.05 is below the PyTorch updates\' norms, so the clipping path runs too');
    assert.ok(Number(merge.privacy!.epsilon) >= epsilonAfter(r, 1e-5, 2), `ε ${merge.privacy!.epsilon} after round ${r}`);
    const withSeed = await fed.audit(merge.oid, await fed.seedOf(r));
    assert.ok(withSeed.ok, `round ${r} with the seed: ${failures(withSeed)}`);
    assert.ok(withSeed.checks.some((c) => c.ok && /recomputed DP-FedAvg .* matches the stored weights bit for bit/.test(c.what)));
    const seedless = await fed.audit(merge.oid);
    assert.ok(seedless.ok, `round ${r} without the seed: ${failures(seedless)}`);
    assert.ok(seedless.checks.some((c) => c.ok && /look like N\(0, σ²\)/.test(c.what)));
    const wrongSeed = await fed.audit(merge.oid, await fed.seedOf(r + 1));
    assert.ok(!wrongSeed.ok, 'another round\'s seed does not audit');
  }
  assert.equal(await readFinalTag(fed.global, fed.plan), (await fed.head()).oid, 'the plan finished and is tagged');
});
