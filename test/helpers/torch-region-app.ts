/**
 * An edge app that runs the PyTorch reference (edge-app/python/aspects_torch.py) through the
 * external-command adapter on ten made-up cases — region r is affected iff its first feature is
 * low — so that federation tests need no registered scans (registration is tested elsewhere).
 */
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import type { EdgeApp, Log } from '../../operator/contracts.js';
import { createCommandApp } from '../../edge-app/command/command-app.js';
import { renderFeaturesFile } from '../../edge-app/aspects/region-features-file.js';
import { FEATURE_COUNT, REGION_ARCHITECTURE, checkRegionWeights, regionTensorSpec } from '../../edge-app/aspects/region-spec.js';
import type { RegionSample } from '../../edge-app/preprocess/region-cohort.js';
import { mulberry32 } from '../../edge-app/random.js';
import { PYTHON, TORCH_SCRIPT } from './python.js';

function madeUpFeatures(seed: number): Buffer {
  const random = mulberry32(seed);
  const samples: RegionSample[] = Array.from({ length: 10 }, (_, n) => {
    const input = Float32Array.from({ length: 10 * FEATURE_COUNT }, () => 2 * random() - 1);
    return { id: `case-${n}.nii.gz`, input, labels: Uint8Array.from({ length: 10 }, (_, r) => (input[r * FEATURE_COUNT]! < -0.2 ? 1 : 0)), hemisphere: n % 2 ? 'R' : 'L' };
  });
  return renderFeaturesFile(samples);
}

/** The PyTorch edge `edge` under `dir`, its made-up cases drawn from `seed`. */
export async function torchRegionApp(o: { edge: string; dir: string; seed: number; log: Log }): Promise<EdgeApp> {
  const dataDir = path.join(o.dir, 'data', o.edge);
  await mkdir(dataDir, { recursive: true });
  const features = madeUpFeatures(o.seed);
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
    log: o.log, retries: 0, timeoutMs: 120_000,
  });
}
