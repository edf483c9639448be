import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readLabelsCsv } from '../edge-app/cohort/labels-csv.js';
import { REGION_NAMES } from '../edge-app/cohort/regions.js';
import { REGION_ELLIPSOIDS } from '../edge-app/cohort/synth-anatomy.js';
import { synthCohort } from '../edge-app/cohort/synth-cohort.js';
import { synthVolume } from '../edge-app/cohort/synth-volume.js';
import { readNifti } from '../edge-app/nifti/read-nifti.js';
import { cellCentre } from '../edge-app/preprocess/grid.js';
import { resampleToGrid } from '../edge-app/preprocess/resample.js';

/** 15–55 HU, normalised. */
const BRAIN_MIN = (15 - 40) / 40, BRAIN_MAX = (55 - 40) / 40;

describe('synthCohort', () => {
  let root: string;
  before(async () => { root = await mkdtemp(join(tmpdir(), 'fedgit-synth-')); });
  after(async () => { await rm(root, { recursive: true, force: true }); });

  const bytesOf = async (dir: string): Promise<Map<string, Buffer>> =>
    new Map(await Promise.all((await readdir(dir)).sort().map(async (f) => [f, await readFile(join(dir, f))] as const)));

  it('is byte-identical for the same seed and different for another', async () => {
    const opts = { count: 3, matrix: 64 };
    await synthCohort({ ...opts, outDir: join(root, 'a'), seed: 9 });
    await synthCohort({ ...opts, outDir: join(root, 'b'), seed: 9 });
    await synthCohort({ ...opts, outDir: join(root, 'c'), seed: 10 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((d) => bytesOf(join(root, d))));
    assert.deepEqual([...a!.keys()], ['labels.csv', 'synth-0000.nii.gz', 'synth-0001.nii.gz', 'synth-0002.nii.gz']);
    for (const [file, bytes] of a!) {
      assert.ok(bytes.equals(b!.get(file)!), `${file} differs for the same seed`);
      if (file !== 'labels.csv') assert.ok(!bytes.equals(c!.get(file)!), `${file} is the same for another seed`);
    }
  });

  it('writes realistic CT geometry and HU (512², 0.43–0.53 mm, 5 mm, 28–36 slices, int16 − 1024)', async () => {
    const dir = join(root, 'full');
    const progress: string[] = [];
    await synthCohort({ outDir: dir, count: 2, seed: 1, onProgress: (_, __, id) => progress.push(id) });
    assert.deepEqual(progress, ['synth-0000.nii.gz', 'synth-0001.nii.gz']);
    const v = await readNifti(join(dir, 'synth-0000.nii.gz'));
    assert.equal(v.datatype, 'int16');
    assert.deepEqual(v.dims.slice(0, 2), [512, 512]);
    assert.ok(v.dims[2] >= 28 && v.dims[2] <= 36);
    assert.ok(v.pixdim[0] >= 0.43 && v.pixdim[0] <= 0.53 && Math.abs(v.pixdim[2] - 5) < 1e-6);
    const identity = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    assert.ok(v.affine.some((a, n) => Math.abs(Math.abs(a) - identity[n]! * (n === 10 ? 5 : v.pixdim[0])) > 1e-3), 'affine has a rotation');
    let bone = 0, brain = 0;
    for (const hu of v.hu) { if (hu > 700) bone++; else if (hu > 15 && hu < 50) brain++; }
    assert.ok(bone > 100_000 && brain > 1_000_000, `bone ${bone}, brain ${brain}`);
  });

  it('labels: some normal volumes, spread scores, both hemispheres', () => {
    const results = Array.from({ length: 200 }, (_, n) => synthVolume(n + 1, { matrix: 16, slices: 28 }));
    const affected = results.map((r) => r.labels.reduce((a, b) => a + b, 0));
    const normal = affected.filter((a) => a === 0).length;
    assert.ok(normal >= 15 && normal <= 50, `normal ${normal}/200`);
    assert.ok(new Set(affected).size >= 5, `scores ${[...new Set(affected)]}`);
    const left = results.filter((r) => r.hemisphere === 'L').length;
    assert.ok(left > 70 && left < 130, `left ${left}/200`);
  });

  it('lesion labels agree with the image: labelled regions are darker on the symptomatic side', async () => {
    const dir = join(root, 'lesions');
    await synthCohort({ outDir: dir, count: 12, seed: 21, matrix: 256, lesionProbability: 1, regionProbability: 0.5 });
    const grid = { depth: 32, height: 96, width: 96 };
    const differences: number[] = [];
    const byRegion = new Map<string, number[]>();
    for (const row of await readLabelsCsv(join(dir, 'labels.csv'))) {
      const values = resampleToGrid(await readNifti(join(dir, row.file)), grid);
      row.labels.forEach((label, r) => {
        if (!label) return;
        const e = REGION_ELLIPSOIDS[r]!;
        let symptomatic = 0, contralateral = 0, cells = 0;
        for (let d = 0; d < grid.depth; d++) for (let h = 0; h < grid.height; h++) for (let w = 0; w < grid.width / 2; w++) {
          const [x, y, z] = cellCentre(grid, d, h, w); // left half: x < 0
          const q = ((x - e.cx) / e.ax) ** 2 + ((y - e.cy) / e.ay) ** 2 + ((z - e.cz) / e.az) ** 2;
          if (q > 0.5) continue;
          const left = values[(d * grid.height + h) * grid.width + w]!;
          const right = values[(d * grid.height + h) * grid.width + grid.width - 1 - w]!;
          // Brain tissue on both sides only: a few degrees of head rotation make skull and CSF asymmetric.
          if (Math.min(left, right) < BRAIN_MIN || Math.max(left, right) > BRAIN_MAX) continue;
          symptomatic += row.hemisphere === 'L' ? left : right;
          contralateral += row.hemisphere === 'L' ? right : left;
          cells++;
        }
        const differenceHu = ((symptomatic - contralateral) / cells) * 40;
        differences.push(differenceHu);
        byRegion.set(REGION_NAMES[r]!, [...(byRegion.get(REGION_NAMES[r]!) ?? []), differenceHu]);
      });
    }
    const darker = differences.filter((d) => d < 0).length;
    const mean = differences.reduce((a, b) => a + b, 0) / differences.length;
    const summary = [...byRegion].map(([k, v]) => `${k}:${v.map((d) => d.toFixed(1)).join('/')}`).join(' ');
    console.log(`lesion contrast (symptomatic − contralateral HU): ${darker}/${differences.length} darker, mean ${mean.toFixed(2)}; ${summary}`);
    assert.ok(differences.length >= 30, `only ${differences.length} lesions`);
    assert.ok(darker >= 0.85 * differences.length, `${darker}/${differences.length} darker; ${summary}`);
    assert.ok(mean < -1, `mean difference ${mean.toFixed(2)} HU; ${summary}`);
  });
});
