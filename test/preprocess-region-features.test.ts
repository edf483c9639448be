/**
 * aspects-region/v3 features on hand-made volumes on the feature grid with the
 * built-in atlas: a symmetric head gives no evidence, a darker patch in one
 * region shows in that region only, a smooth left-right bias field is cancelled
 * by the detrending, and the mirror is x → −x.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtinAtlas } from '../edge-app/atlas/index.js';
import { atlasLabel } from '../edge-app/atlas/aspects-atlas.js';
import { REGION_NAMES } from '../edge-app/cohort/regions.js';
import { headHu } from '../edge-app/cohort/synth-anatomy.js';
import { TEMPLATE_HEAD } from '../edge-app/atlas/template.js';
import { FEATURE_GRID, labelsOnFeatureGrid, mirrorIndex } from '../edge-app/preprocess/feature-grid.js';
import { FEATURE_COUNT, FEATURE_NAMES, regionFeatures, smoothWithinRegion } from '../edge-app/preprocess/region-features.js';
import { mulberry32, gaussian } from '../edge-app/random.js';

const labels = labelsOnFeatureGrid(builtinAtlas(2).atlas);
const [nx, ny, nz] = FEATURE_GRID.dims;
const a = FEATURE_GRID.affine;
const feature = (f: Float32Array, region: string, name: (typeof FEATURE_NAMES)[number]) => f[REGION_NAMES.indexOf(region as never) * FEATURE_COUNT + FEATURE_NAMES.indexOf(name)]!;

/** The template head on the feature grid, plus noise and an optional change per voxel. */
function volume(seed: number, change: (x: number, y: number, z: number, label: number, hu: number) => number = () => 0): Float32Array {
  const random = mulberry32(seed);
  const hu = new Float32Array(nx * ny * nz);
  for (let k = 0, n = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, n++) {
    const x = a[3]! + a[0]! * i, y = a[7]! + a[5]! * j, z = a[11]! + a[10]! * k;
    const v = headHu(TEMPLATE_HEAD, x, y, z);
    hu[n] = v + change(x, y, z, labels[n]!, v) + 2 * gaussian(random);
  }
  return hu;
}

describe('aspects-region/v3 features', () => {
  it('mirror index: x → −x, an involution, labels of the built-in atlas are mirror images', () => {
    for (const n of [0, 17, 12345, nx * ny * nz - 1]) {
      assert.equal(mirrorIndex(mirrorIndex(n)), n);
      const i = n % nx, m = mirrorIndex(n) % nx;
      assert.equal(a[3]! + a[0]! * i, -(a[3]! + a[0]! * m));
    }
    let pairs = 0;
    for (let n = 0; n < labels.length; n++) {
      if (labels[n]! > 0 && labels[n]! <= 10) {
        assert.equal(labels[mirrorIndex(n)], labels[n]! + 10, `voxel ${n}`);
        pairs++;
      }
    }
    assert.ok(pairs > 20000, `${pairs} labelled left voxels`);
  });

  it('a symmetric head gives no evidence in any region', () => {
    const f = regionFeatures(volume(1), labels, 'L');
    for (const region of REGION_NAMES) {
      assert.ok(Math.abs(feature(f, region, 'meanDiff')) < 0.15, `${region} meanDiff ${feature(f, region, 'meanDiff')}`);
      assert.ok(feature(f, region, 'coverage') > 0.8, `${region} coverage ${feature(f, region, 'coverage')}`);
    }
  });

  it('a 4 HU darker patch in the left M2 shows in M2 of the left side only', () => {
    const m2 = atlasLabel('M2', 'L');
    // A ball of 12 mm around M2's centroid: part of the region, as real lesions are.
    const hu = volume(2, (x, y, z, label) => (label === m2 && Math.hypot(x + 53, y + 14, z - 3) < 14 ? -4 : 0));
    const left = regionFeatures(hu, labels, 'L');
    const right = regionFeatures(hu, labels, 'R');
    assert.ok(feature(left, 'M2', 'lowSmoothDiff') < -0.5, `M2 low quantile ${feature(left, 'M2', 'lowSmoothDiff')}`);
    assert.ok(feature(left, 'M2', 'meanDiff') < -0.1, `M2 mean ${feature(left, 'M2', 'meanDiff')}`);
    assert.ok(feature(left, 'M2', 'darkerFraction') > 0.15, `M2 darker ${feature(left, 'M2', 'darkerFraction')}`);
    // Seen from the right, the left lesion is brighter on the other side.
    assert.ok(feature(right, 'M2', 'highSmoothDiff') > 0.5, `right M2 high quantile ${feature(right, 'M2', 'highSmoothDiff')}`);
    for (const region of REGION_NAMES.filter((r) => r !== 'M2' && r !== 'I')) {
      assert.ok(Math.abs(feature(left, region, 'meanDiff')) < 0.15, `${region} meanDiff ${feature(left, region, 'meanDiff')}`);
    }
  });

  it('a smooth left-right bias field moves the raw difference but not the detrended one', () => {
    // +0.05 HU per mm towards the right: s − c = −0.1·|x| HU on the left, −3 to −6 HU in the M regions.
    const hu = volume(3, (x, _y, _z, _label, v) => (v > -100 && v < 100 ? 0.05 * x : 0));
    const f = regionFeatures(hu, labels, 'L');
    for (const region of ['M1', 'M2', 'M3', 'M5']) {
      assert.ok(feature(f, region, 'rawMeanDiff') < -0.6, `${region} raw ${feature(f, region, 'rawMeanDiff')}`);
      assert.ok(Math.abs(feature(f, region, 'meanDiff')) < 0.2, `${region} detrended ${feature(f, region, 'meanDiff')}`);
    }
  });

  it('is deterministic and bounded', () => {
    const hu = volume(4);
    const f1 = regionFeatures(hu, labels, 'R'), f2 = regionFeatures(hu, labels, 'R');
    assert.deepEqual(f1, f2);
    assert.equal(f1.length, 10 * FEATURE_COUNT);
    assert.ok([...f1].every((v) => Number.isFinite(v) && Math.abs(v) <= 5));
  });

  it('the smoothed difference is the mean over the 5×5×5 neighbours in the region, as MODEL.md defines it', () => {
    const random = mulberry32(7);
    const diff = new Float64Array(nx * ny * nz).fill(NaN);
    // A ragged region with holes, touching the grid's x = 0 face.
    const tissue: number[] = [];
    for (let k = 10; k < 18; k++) for (let j = 30; j < 41; j++) for (let i = 0; i < 9; i++) {
      if (random() < 0.3) continue;
      const n = (k * ny + j) * nx + i;
      tissue.push(n);
      diff[n] = 10 * gaussian(random);
    }
    const fast = smoothWithinRegion(tissue, diff, nx, ny);
    tissue.forEach((t, idx) => {
      const i = t % nx, j = Math.floor(t / nx) % ny, k = Math.floor(t / (nx * ny));
      let sum = 0, count = 0;
      for (let dk = -2; dk <= 2; dk++) for (let dj = -2; dj <= 2; dj++) for (let di = -2; di <= 2; di++) {
        if (i + di < 0) continue;
        const v = diff[((k + dk) * ny + j + dj) * nx + i + di]!;
        if (v === v) { sum += v; count++; }
      }
      assert.ok(Math.abs(fast[idx]! - sum / count) < 1e-9, `voxel ${t}: ${fast[idx]} vs ${sum / count}`);
    });
  });
});
