import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataInvalid } from '../operator/errors.js';
import { affineToQuaternion, quaternionToAffine } from '../edge-app/nifti/affine.js';
import { parseNifti } from '../edge-app/nifti/parse-nifti.js';
import { readNifti, writeNifti } from '../edge-app/nifti/read-nifti.js';
import { renderNifti } from '../edge-app/nifti/render-nifti.js';
import { DATATYPES, type DatatypeName } from '../edge-app/nifti/volume.js';

/** A rotation of a few degrees about each axis, x flipped, 0.48 × 0.47 × 5 mm voxels. */
const OBLIQUE = (() => {
  const [a, b, c] = [0.05, -0.03, 0.07];
  const r = [
    [Math.cos(b) * Math.cos(c), Math.sin(a) * Math.sin(b) * Math.cos(c) - Math.cos(a) * Math.sin(c), Math.cos(a) * Math.sin(b) * Math.cos(c) + Math.sin(a) * Math.sin(c)],
    [Math.cos(b) * Math.sin(c), Math.sin(a) * Math.sin(b) * Math.sin(c) + Math.cos(a) * Math.cos(c), Math.cos(a) * Math.sin(b) * Math.sin(c) - Math.sin(a) * Math.cos(c)],
    [-Math.sin(b), Math.sin(a) * Math.cos(b), Math.cos(a) * Math.cos(b)],
  ];
  const zooms = [-0.48, 0.47, 5];
  const offset = [120.5, -110.25, -60];
  return [0, 1, 2].flatMap((row) => [...[0, 1, 2].map((col) => r[row]![col]! * zooms[col]!), offset[row]!]).concat([0, 0, 0, 1]);
})();

function volume(dims: [number, number, number], values: (n: number) => number) {
  const hu = new Float32Array(dims[0] * dims[1] * dims[2]);
  for (let n = 0; n < hu.length; n++) hu[n] = values(n);
  return { dims, hu, affine: OBLIQUE, description: 'round trip' } as const;
}

const CASES: { datatype: DatatypeName; slope: number; inter: number; value: (n: number) => number }[] = [
  { datatype: 'int16', slope: 1, inter: -1024, value: (n) => ((n * 37) % 3000) - 1000 },
  { datatype: 'int16', slope: 0.5, inter: 10, value: (n) => 10 + 0.5 * (((n * 13) % 2000) - 1000) },
  { datatype: 'uint8', slope: 2, inter: -100, value: (n) => -100 + 2 * ((n * 7) % 256) },
  { datatype: 'int8', slope: 1, inter: 0, value: (n) => ((n * 5) % 256) - 128 },
  { datatype: 'uint16', slope: 1, inter: -1024, value: (n) => ((n * 11) % 4000) - 1024 },
  { datatype: 'int32', slope: 1, inter: 0, value: (n) => (n * 7919) % 100000 - 50000 },
  { datatype: 'uint32', slope: 1, inter: 0, value: (n) => n * 1000 },
  { datatype: 'float32', slope: 1, inter: 0, value: (n) => Math.fround(Math.sin(n) * 1000) },
  { datatype: 'float64', slope: 1, inter: 0, value: (n) => Math.fround(Math.cos(n) * 1000) },
];

describe('writeNifti → readNifti', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'fedgit-nifti-rt-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  for (const c of CASES) {
    for (const littleEndian of [true, false]) {
      for (const ext of ['.nii', '.nii.gz']) {
        const name = `${c.datatype}-s${c.slope}-${littleEndian ? 'le' : 'be'}${ext}`;
        it(name, async () => {
          const v = volume([5, 4, 3], c.value);
          const path = join(dir, name);
          await writeNifti(path, v, { datatype: c.datatype, littleEndian, sclSlope: c.slope, sclInter: c.inter });
          const back = await readNifti(path);
          assert.equal(back.file, path);
          assert.equal(back.datatype, c.datatype);
          assert.deepEqual(back.dims, [5, 4, 3]);
          assert.deepEqual([...back.hu], [...v.hu]);
          back.affine.forEach((a, n) => assert.ok(Math.abs(a - OBLIQUE[n]!) < 1e-4, `affine[${n}]`));
          assert.equal(back.description, 'round trip');
          const raw = await readFile(path);
          if (ext === '.nii') assert.equal(raw.length, 352 + 60 * DATATYPES[c.datatype].bytes);
          else assert.deepEqual([raw[0], raw[1]], [0x1f, 0x8b]);
        });
      }
    }
  }

  it('reads from a Buffer that is a view into a larger pool', () => {
    const bytes = renderNifti(volume([3, 2, 2], (n) => n - 5), { datatype: 'int16' });
    const pool = Buffer.alloc(bytes.length + 3);
    pool.set(bytes, 3); // odd offset: the int16 voxels are misaligned
    const back = parseNifti(pool.subarray(3), 'pooled.nii');
    assert.deepEqual([...back.hu], Array.from({ length: 12 }, (_, n) => n - 5));
  });

  it('uses the qform when sform_code is 0, and refuses a file with both codes 0 (left and right undefined)', () => {
    const bytes = renderNifti(volume([2, 2, 2], (n) => n), {});
    const view = new DataView(bytes.buffer);
    view.setInt16(254, 0, true); // sform_code
    const fromQform = parseNifti(bytes, 'q.nii').affine;
    fromQform.forEach((a, n) => assert.ok(Math.abs(a - OBLIQUE[n]!) < 1e-3, `qform affine[${n}] ${a} vs ${OBLIQUE[n]}`));
    view.setInt16(252, 0, true); // qform_code
    assert.throws(() => parseNifti(bytes, 'none.nii'), (e: unknown) => {
      assert.ok(e instanceof DataInvalid, `expected DataInvalid, got ${String(e)}`);
      assert.equal(e.message, 'none.nii: no orientation: sform_code and qform_code are both 0, so there is no voxel-to-world affine; left and right are undefined');
      assert.deepEqual([e.data.file, e.data.reason], ['none.nii', 'orientation']);
      return true;
    });
  });

  it('slope 0 or NaN means no scaling', () => {
    for (const slope of [0, NaN]) {
      const bytes = renderNifti(volume([2, 1, 1], (n) => n + 7), { datatype: 'int16' });
      new DataView(bytes.buffer).setFloat32(112, slope, true);
      new DataView(bytes.buffer).setFloat32(116, 1000, true);
      assert.deepEqual([...parseNifti(bytes, 's.nii').hu], [7, 8]);
    }
  });

  it('quaternion ↔ affine round trip, proper and improper (qfac −1) rotations', () => {
    const flipped = OBLIQUE.map((v, n) => (n % 4 === 0 && n < 12 ? -v : v)); // negate first column
    for (const m of [OBLIQUE, flipped, [-1, 0, 0, 5, 0, -1, 0, 6, 0, 0, 1, 7, 0, 0, 0, 1]]) {
      const back = quaternionToAffine(affineToQuaternion(m));
      back.forEach((a, n) => assert.ok(Math.abs(a - m[n]!) < 1e-3, `affine[${n}] ${a} vs ${m[n]}`));
    }
  });
});
