/**
 * ms per training step (batch 4, one Adam step) and per inference batch of
 * aspects-cnn/v2 at the default grid and at 32×96×96. Prints, asserts nothing.
 */
import { AspectsTrainer } from '../edge-app/aspects/model.js';
import { DEFAULT_ASPECTS_GRID, initialAspectsWeights, inputSize, mulberry32, type Grid } from '../edge-app/aspects/spec.js';
import { selectBackend } from '../edge-app/tf-backend.js';

const BATCH = 4;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function benchGrid(grid: Grid, reps: number): { stepMs: number; inferMs: number } {
  const random = mulberry32(1);
  const size = inputSize(grid);
  const inputs = Float32Array.from({ length: BATCH * size }, () => 2 * random() - 1);
  const labels = Uint8Array.from({ length: BATCH * 10 }, () => (random() < 0.3 ? 1 : 0));
  const volumes = Array.from({ length: BATCH }, (_, i) => inputs.subarray(i * size, (i + 1) * size));
  const trainer = new AspectsTrainer(initialAspectsWeights(1, grid), { grid });
  try {
    trainer.trainStep(inputs, labels); // warm-up: Adam moments, kernel caches
    trainer.predict(volumes, BATCH);
    const steps: number[] = [];
    const infers: number[] = [];
    for (let i = 0; i < reps; i++) {
      let t0 = performance.now();
      trainer.trainStep(inputs, labels);
      steps.push(performance.now() - t0);
      t0 = performance.now();
      trainer.predict(volumes, BATCH);
      infers.push(performance.now() - t0);
    }
    return { stepMs: median(steps), inferMs: median(infers) };
  } finally {
    trainer.dispose();
  }
}

export async function benchAspectsModel(): Promise<void> {
  const backend = await selectBackend();
  for (const [grid, reps] of [
    [{ depth: 8, height: 16, width: 16 }, 15], // the default job's grid (config/aspects.yaml)
    [DEFAULT_ASPECTS_GRID, 7],
    [{ depth: 32, height: 96, width: 96 }, 2],
  ] as const) {
    const { stepMs, inferMs } = benchGrid(grid, reps);
    console.log(
      `aspects-cnn/v2 ${grid.depth}×${grid.height}×${grid.width} (${backend}, batch ${BATCH}, median of ${reps}): ` +
        `${stepMs.toFixed(0)} ms/training step, ${inferMs.toFixed(0)} ms/inference batch`,
    );
  }
}
