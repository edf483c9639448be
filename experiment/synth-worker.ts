/** Worker thread: writes one synthetic cohort folder and reports progress to its parent. */
import { parentPort, workerData } from 'node:worker_threads';
import { synthCohort, type SynthProfile } from '../edge-app/cohort/index.js';

export type SynthJob = { readonly outDir: string; readonly count: number; readonly seed: number; readonly matrix: number; readonly profile: SynthProfile };
export type SynthMessage = { readonly done: number; readonly total: number; readonly file: string };

const job = workerData as SynthJob;
await synthCohort({
  outDir: job.outDir,
  count: job.count,
  seed: job.seed,
  matrix: job.matrix,
  profile: job.profile,
  onProgress: (done, total, file) => parentPort?.postMessage({ done, total, file } satisfies SynthMessage),
});
