import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RegionTrainer } from '../edge-app/aspects/region-model.js';
import { DEFAULT_HIDDEN, FEATURE_COUNT, REGION_COUNT, initialRegionWeights } from '../edge-app/aspects/region-spec.js';
import { mulberry32 } from '../edge-app/random.js';
import { selectBackend } from '../edge-app/tf-backend.js';

/** The default job's model and batch: aspects-region/v3, 32 hidden units, batch 8. */
const BATCH = 8;
const THREADS = 2;
const TFJS_REPS = 200;
const TORCH_REPS = 200;
const SCRIPT = fileURLToPath(new URL('../../edge-app/python/aspects_torch.py', import.meta.url));
const PYTHON = process.env.FEDGIT_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

/**
 * ms per training step (forward + backward + Adam) of the default job's model, aspects-region/v3
 * (32 hidden units), batch 8: PyTorch (edge-app/python/aspects_torch.py `bench`, 2 threads) vs
 * TensorFlow.js (in this process). Prints only.
 */
export async function benchTorchVsTfjs(): Promise<void> {
  const label = `torch-vs-tfjs: aspects-region/v3 (${DEFAULT_HIDDEN} hidden) batch ${BATCH}`;
  let torchMs: number | undefined;
  try {
    const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT, 'bench'], {
      env: {
        ...process.env,
        FEDGIT_BATCH_SIZE: String(BATCH),
        FEDGIT_THREADS: String(THREADS),
        FEDGIT_REPS: String(TORCH_REPS),
      },
    });
    torchMs = (JSON.parse(stdout.trim().split('\n').at(-1)!) as { msPerStep: number }).msPerStep;
    console.log(`${label}: PyTorch (${THREADS} threads): ${torchMs.toFixed(2)} ms/step (${TORCH_REPS} reps after 1 warm-up)`);
  } catch (e) {
    console.log(`${label}: PyTorch unavailable (${PYTHON}: ${(e as Error).message.split('\n')[0]}); install python3-torch`);
  }

  const backend = await selectBackend();
  const random = mulberry32(1);
  const inputs = Float32Array.from({ length: BATCH * REGION_COUNT * FEATURE_COUNT }, () => 2 * random() - 1);
  const labels = Float32Array.from({ length: BATCH * REGION_COUNT }, () => (random() < 0.3 ? 1 : 0));
  const trainer = new RegionTrainer(initialRegionWeights(1), { learningRate: 3e-3 });
  try {
    trainer.trainStep(inputs, labels); // warm-up
    const started = performance.now();
    for (let i = 0; i < TFJS_REPS; i++) trainer.trainStep(inputs, labels);
    const tfjsMs = (performance.now() - started) / TFJS_REPS;
    console.log(`${label}: TensorFlow.js (${backend} backend): ${tfjsMs.toFixed(2)} ms/step (${TFJS_REPS} reps after 1 warm-up)`);
    if (torchMs !== undefined) console.log(`${label}: TensorFlow.js / PyTorch = ${(tfjsMs / torchMs).toFixed(2)}×`);
  } finally {
    trainer.dispose();
  }
}
