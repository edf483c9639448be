import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyAffine } from '../edge-app/nifti/affine.js';
import { DEFAULT_GRID, cellCentre, type Grid } from '../edge-app/preprocess/grid.js';
import { DIFFERENCE_GAIN, pairHemispheres, preprocess } from '../edge-app/preprocess/preprocess.js';
import { resampleToGrid } from '../edge-app/preprocess/resample.js';

/** 1 mm voxels whose centres sit on half-millimetres, so no centre lies on a cell border. */
const DIMS: [number, number, number] = [150, 200, 100];
const IDENTITY = [1, 0, 0, -74.5, 0, 1, 0, -105.5, 0, 0, 1, -21.5, 0, 0, 0, 1];
const FLIPPED_X = [-1, 0, 0, 74.5, 0, 1, 0, -105.5, 0, 0, 1, -21.5, 0, 0, 0, 1];
/** i runs along −y, j along +x: a 90° in-plane rotation. */
const ROTATED = [0, 1, 0, -74.5, -1, 0, 0, 94.5, 0, 0, 1, -21.5, 0, 0, 0, 1];

/** Cell (d=10, h=28, w=34) covers x ∈ [30, 33), y ∈ [8, 12), z ∈ [40, 46) on the default grid. */
const BLOB_CELL = { d: 10, h: 28, w: 34 };
const inBlob = (x: number, y: number, z: number): boolean => x >= 30 && x < 33 && y >= 8 && y < 12 && z >= 40 && z < 46;

function volumeFrom(affine: number[], dims: [number, number, number], hu: (x: number, y: number, z: number) => number) {
  const [nx, ny, nz] = dims;
  const values = new Float32Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    values[(k * ny + j) * nx + i] = hu(...applyAffine(affine, i, j, k));
  }
  return { dims, hu: values, affine };
}

const at = (grid: Grid, values: Float32Array, d: number, h: number, w: number): number => values[(d * grid.height + h) * grid.width + w]!;

describe('resampleToGrid', () => {
  it('puts a blob at a known world position into its cell, clipped to the window', () => {
    const volume = volumeFrom(IDENTITY, DIMS, (x, y, z) => (inBlob(x, y, z) ? 1000 : -1000));
    const grid = resampleToGrid(volume);
    assert.equal(grid.length, 16 * 48 * 48);
    const hot = [...grid.keys()].filter((n) => grid[n] !== -1);
    assert.deepEqual(hot, [(BLOB_CELL.d * 48 + BLOB_CELL.h) * 48 + BLOB_CELL.w]);
    assert.equal(at(DEFAULT_GRID, grid, BLOB_CELL.d, BLOB_CELL.h, BLOB_CELL.w), 1); // 1000 HU clipped to 80 → +1
    const centre = cellCentre(DEFAULT_GRID, BLOB_CELL.d, BLOB_CELL.h, BLOB_CELL.w);
    assert.deepEqual(centre, [31.5, 10, 43]);
  });

  it('averages the clipped HU of the voxels in a cell (area averaging)', () => {
    // Back half of the blob cell at 20 HU, front half at 60 HU: mean 40 HU → 0.
    const volume = volumeFrom(IDENTITY, DIMS, (x, y, z) => (inBlob(x, y, z) ? (y < 10 ? 20 : 60) : 0));
    const grid = resampleToGrid(volume);
    assert.ok(Math.abs(at(DEFAULT_GRID, grid, BLOB_CELL.d, BLOB_CELL.h, BLOB_CELL.w)) < 1e-6);
  });

  it('empty cells are 0 HU (−1) and a volume outside the box gives an all −1 grid', () => {
    const far = [1, 0, 0, 500, 0, 1, 0, 500, 0, 0, 1, 500, 0, 0, 0, 1];
    const grid = resampleToGrid(volumeFrom(far, [10, 10, 10], () => 50));
    assert.ok(grid.every((v) => v === -1));
  });

  it('follows the affine, not the array order: flipped and rotated storage give the same grid', () => {
    const content = (x: number, y: number, z: number): number => (inBlob(x, y, z) ? 80 : x < 0 ? 30 + (y % 7) : 45 + (z % 5));
    const reference = resampleToGrid(volumeFrom(IDENTITY, DIMS, content));
    for (const affine of [FLIPPED_X, ROTATED]) {
      const dims: [number, number, number] = affine === ROTATED ? [200, 150, 100] : DIMS;
      const grid = resampleToGrid(volumeFrom(affine, dims, content));
      for (let n = 0; n < grid.length; n++) assert.ok(Math.abs(grid[n]! - reference[n]!) < 1e-6, `cell ${n}: ${grid[n]} vs ${reference[n]}`);
    }
  });

  it('supports other grids (32×96×96)', () => {
    const grid = { depth: 32, height: 96, width: 96 };
    const values = resampleToGrid(volumeFrom(IDENTITY, DIMS, (x, y, z) => (inBlob(x, y, z) ? 80 : 0)), grid);
    // The blob cell splits into 2×2×2 finer cells.
    assert.equal(at(grid, values, 20, 56, 68), 1);
    assert.equal(at(grid, values, 21, 57, 69), 1);
    assert.equal(values.filter((v) => v === 1).length, 8);
  });
});

describe('pairHemispheres / preprocess', () => {
  it('channel 0 is gain × (symptomatic − mirrored contralateral), channel 1 the symptomatic half, midline last', () => {
    assert.equal(DIFFERENCE_GAIN, 4);
    const grid = { depth: 1, height: 1, width: 4 };
    const values = new Float32Array([1, 2, 3, 4]); // x index 0 is the patient's far left
    // left half (1, 2), right half mirrored (4, 3): cell w pairs x index w with W−1−w
    assert.deepEqual([...pairHemispheres(values, 'L', grid)], [4 * (1 - 4), 1, 4 * (2 - 3), 2]);
    assert.deepEqual([...pairHemispheres(values, 'R', grid)], [4 * (4 - 1), 4, 4 * (3 - 2), 3]);
  });

  it('a symmetric head gives a zero difference channel; the difference is rounded like float32 s − c', () => {
    const grid = { depth: 2, height: 1, width: 4 };
    const values = new Float32Array([0.1, -0.7, -0.7, 0.1, 0.3, 0.2, 0.2, 0.3]);
    const paired = pairHemispheres(values, 'R', grid);
    assert.deepEqual([...paired].filter((_, i) => i % 2 === 0), [0, 0, 0, 0]);
    const odd = new Float32Array([0.1, 0, 0, 1 / 3]);
    const [d] = pairHemispheres(odd, 'L', { depth: 1, height: 1, width: 4 });
    assert.equal(d, 4 * Math.fround(odd[0]! - odd[3]!));
  });

  it('a blob in the patient’s right hemisphere is symptomatic for R whatever the x direction of the array', () => {
    const content = (x: number, y: number, z: number): number => (inBlob(x, y, z) ? 80 : 0);
    for (const affine of [IDENTITY, FLIPPED_X]) {
      const volume = volumeFrom(affine, DIMS, content);
      const half = 24, mirrored = 47 - BLOB_CELL.w; // x = +31.5 mm is right of the midline
      const index = (c: number) => ((BLOB_CELL.d * 48 + BLOB_CELL.h) * half + mirrored) * 2 + c;
      const right = preprocess(volume, 'R');
      const left = preprocess(volume, 'L');
      assert.equal(right.length, 16 * 48 * 24 * 2);
      // R: the blob (1) is symptomatic, the mirrored left cell is empty (−1): difference 4·(1 − (−1))
      assert.equal(right[index(1)], 1);
      assert.equal(right[index(0)], 8);
      // L: the symptomatic cell is the empty one, the blob is contralateral
      assert.equal(left[index(1)], -1);
      assert.equal(left[index(0)], -8);
    }
  });
});
