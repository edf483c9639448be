import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthCohort } from '../edge-app/cohort/synth-cohort.js';
import { readNifti } from '../edge-app/nifti/read-nifti.js';
import type { NiftiVolume } from '../edge-app/nifti/volume.js';
import { preprocess } from '../edge-app/preprocess/preprocess.js';

const VOLUMES = 6;

/** Volumes per second for synthesis, reading and preprocessing (512×512×28–36 int16 .nii.gz). Prints only. */
export async function benchDataLoader(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'fedgit-bench-data-'));
  try {
    let started = performance.now();
    await synthCohort({ outDir: dir, count: VOLUMES, seed: 1 });
    report('synthCohort (generate + gzip + write)', VOLUMES, started);

    const files = (await readdir(dir)).filter((f) => f.endsWith('.nii.gz')).sort();
    const volumes: NiftiVolume[] = [];
    started = performance.now();
    for (const f of files) volumes.push(await readNifti(join(dir, f)));
    report('readNifti (.nii.gz)', files.length, started);

    for (const grid of [{ depth: 16, height: 48, width: 48 }, { depth: 32, height: 96, width: 96 }]) {
      started = performance.now();
      for (const v of volumes) preprocess(v, 'L', grid);
      report(`preprocess ${grid.depth}×${grid.height}×${grid.width}`, volumes.length, started);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function report(what: string, count: number, startedMs: number): void {
  const seconds = (performance.now() - startedMs) / 1000;
  console.log(`data-loader: ${what}: ${(count / seconds).toFixed(2)} volumes/s (${((seconds / count) * 1000).toFixed(0)} ms/volume)`);
}
