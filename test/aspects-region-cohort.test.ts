/**
 * aspects-region/v3 preprocessing on real files with real elastix: one
 * synthetic head stored twice — once as written, once rotated 8°, shifted
 * 10 mm and stored LPS as uint16 with scl_inter — gives the same per-region
 * features (the registration undoes the pose); a volume without a head is left
 * out with one line naming it; the second load comes from the feature cache.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeNifti } from '../edge-app/nifti/read-nifti.js';
import type { NiftiVolume } from '../edge-app/nifti/volume.js';
import { FEATURE_COUNT, FEATURE_NAMES } from '../edge-app/preprocess/region-features.js';
import { loadRegionCohort, type RegionCohort } from '../edge-app/preprocess/region-cohort.js';
import { independentVolume } from './helpers/independent-cohort.js';
import { flippedStorage, moved } from './helpers/registration-copies.js';

let dir: string;
let first: RegionCohort;
const refused: string[] = [];
const cachedFirst: boolean[] = [];

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-region-cohort-'));
  const v = independentVolume(5, { matrix: 128 });
  const volume: NiftiVolume = { ...v.volume, file: 'a', pixdim: [1, 1, 1], datatype: 'float32' };
  await writeNifti(path.join(dir, 'a.nii.gz'), volume, { datatype: 'int16', sclSlope: 1, sclInter: 0 });
  const posed = flippedStorage(moved(volume, { rotateDeg: [0, 3, 8], shiftMm: [10, -6, 4], about: [0, -17, 12] }));
  await writeNifti(path.join(dir, 'b.nii.gz'), posed, { datatype: 'uint16', sclSlope: 1, sclInter: -1024 });
  const air = { dims: [64, 64, 20] as [number, number, number], hu: new Float32Array(64 * 64 * 20).fill(-1000), affine: [3, 0, 0, -96, 0, 3, 0, -96, 0, 0, 5, -50, 0, 0, 0, 1], description: 'air' };
  await writeNifti(path.join(dir, 'empty.nii.gz'), air, { datatype: 'int16' });
  const labels = v.labels.join(',');
  await writeFile(path.join(dir, 'labels.csv'), `file,hemisphere,C,L,IC,I,M1,M2,M3,M4,M5,M6\na.nii.gz,${v.hemisphere},${labels}\nb.nii.gz,${v.hemisphere},${labels}\nempty.nii.gz,L,0,0,0,0,0,0,0,0,0,0\n`);
  first = await loadRegionCohort(dir, { concurrency: 2, onRefused: (_id, m) => refused.push(m), onProgress: (_d, _n, _id, cached) => cachedFirst.push(cached) });
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('aspects-region/v3 preprocessing on files', () => {
  it('leaves out a volume without a head, naming the file in one line', () => {
    assert.equal(first.count, 2);
    assert.deepEqual(first.samples.map((s) => s.id), ['a.nii.gz', 'b.nii.gz']);
    assert.equal(refused.length, 1);
    assert.match(refused[0]!, /empty\.nii\.gz: .*head/);
    assert.ok(!refused[0]!.includes('\n'));
    assert.deepEqual(first.refused.map((r) => r.id), ['empty.nii.gz']);
  });

  it('the same head in another pose, storage order and type gives the same features', (t) => {
    const a = first.samples[0]!, b = first.samples[1]!;
    let worst = 0, worstAt = '';
    for (let r = 0; r < 10; r++) {
      for (const name of ['meanDiff', 'medianDiff', 'lowSmoothDiff', 'level'] as const) {
        const k = r * FEATURE_COUNT + FEATURE_NAMES.indexOf(name);
        const d = Math.abs(a.input[k]! - b.input[k]!);
        if (d > worst) { worst = d; worstAt = `region ${r} ${name}: ${a.input[k]} vs ${b.input[k]}`; }
      }
    }
    t.diagnostic(`largest difference ${worst.toFixed(3)} (${worstAt})`);
    // 0.25 = 1 HU of mean difference: far below a 3–8 HU lesion.
    assert.ok(worst < 0.25, worstAt);
    assert.ok(a.input.some((v) => Math.abs(v) > 0.3), 'the features are not all near zero');
  });

  it('a second load comes from the cache and gives identical inputs', async () => {
    const cached: boolean[] = [];
    const again = await loadRegionCohort(dir, { onProgress: (_d, _n, id, c) => id !== 'empty.nii.gz' && cached.push(c) });
    assert.deepEqual(cached, [true, true]);
    assert.ok(cachedFirst.every((c) => !c));
    assert.deepEqual(again.samples.map((s) => [...s.input]), first.samples.map((s) => [...s.input]));
  });
});
