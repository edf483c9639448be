/**
 * Intake refuses volumes nothing should be trained on: no head in the field of view (the table
 * put it a metre away, only the top of the skull is in view, an all-air or water phantom scan),
 * or no orientation at all. Each is one line naming the file.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataInvalid } from '../operator/errors.js';
import { synthVolume, type SynthVolume } from '../edge-app/cohort/synth-volume.js';
import { applyAffine, invertAffine } from '../edge-app/nifti/affine.js';
import { writeNifti } from '../edge-app/nifti/read-nifti.js';
import { HEAD_LIMITS, headProblem, measureHead, requireHead } from '../edge-app/intake/head-check.js';
import { readScan } from '../edge-app/intake/resolve-volume.js';
import { tempDir } from './helpers/temp.js';

type Volume = SynthVolume['volume'];

/**
 * The same scanner field of view with the head moved `dzMm` along world z: each voxel shows what
 * was at its world position minus the shift (nearest voxel; air where that is outside the scan,
 * padding stays padding).
 */
function moveHead(volume: Volume, dzMm: number): Volume {
  const [nx, ny, nz] = volume.dims;
  const toVoxel = invertAffine(volume.affine);
  const hu = new Float32Array(volume.hu.length);
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const n = (k * ny + j) * nx + i;
        if (volume.hu[n] === -1024) { hu[n] = -1024; continue; }
        const [x, y, z] = applyAffine(volume.affine, i, j, k);
        const [a, b, c] = applyAffine(toVoxel, x, y, z - dzMm).map(Math.round) as [number, number, number];
        const inside = a >= 0 && a < nx && b >= 0 && b < ny && c >= 0 && c < nz;
        hu[n] = inside ? volume.hu[(c * ny + b) * nx + a]! : -1000;
      }
    }
  }
  return { ...volume, hu };
}

/** A 200 mm water cylinder (0 HU ± noise) along k: brain-range, no bone. */
function waterPhantom(volume: Volume): Volume {
  const [nx, ny] = volume.dims;
  const radius = 100 / volume.pixdim[0];
  const hu = volume.hu.map((v, n) => {
    const i = n % nx, j = Math.floor(n / nx) % ny;
    return Math.hypot(i - nx / 2, j - ny / 2) < radius ? (n % 7) - 3 : v === -1024 ? v : -1000;
  });
  return { ...volume, hu };
}

const NO_HEAD = /no head found in the field of view/;

describe('head check (pure)', () => {
  for (const matrix of [48, 128, 512]) {
    it(`finds the synthetic head at matrix ${matrix}`, () => {
      for (const seed of matrix === 512 ? [3] : [3, 4, 5]) {
        const m = measureHead(synthVolume(seed, { matrix }).volume);
        assert.equal(headProblem(m), undefined, `seed ${seed}: ${JSON.stringify(m)}`);
        assert.ok(m.brainMl > 1000 && m.brainMl < HEAD_LIMITS.brainMaxMl, `brain ${m.brainMl} mL`);
        assert.ok(m.boneMl > 200, `bone ${m.boneMl} mL`);
      }
    });
  }

  it('a head moved 10 mm is still found; moved 110 mm (a skull cap in view) or 1200 mm (a table offset) it is not', () => {
    const { volume } = synthVolume(8, { matrix: 128, slices: 30 });
    assert.equal(headProblem(measureHead(moveHead(volume, 10))), undefined);
    for (const dz of [110, -110, 1200]) {
      const m = measureHead(moveHead(volume, dz));
      assert.match(headProblem(m) ?? '(accepted)', NO_HEAD, `moved ${dz} mm: ${JSON.stringify(m)}`);
    }
  });

  it('an all-air scan and a water phantom have no head', () => {
    const { volume } = synthVolume(9, { matrix: 128, slices: 30 });
    const air = measureHead(moveHead(volume, 1e6));
    assert.deepEqual(air, { boneMl: 0, brainMl: 0 });
    assert.match(headProblem(air)!, NO_HEAD);
    assert.match(headProblem(measureHead(waterPhantom(volume)))!, NO_HEAD);
  });

  it('requireHead names the file in one line', () => {
    const { volume } = synthVolume(10, { matrix: 64, slices: 28 });
    assert.throws(() => requireHead({ ...moveHead(volume, 1200), file: '/data/ct-0042.nii.gz', datatype: 'int16' }), (e: unknown) => {
      assert.ok(e instanceof DataInvalid, String(e));
      assert.match(e.message, /^\/data\/ct-0042\.nii\.gz: no head found in the field of view: 0 mL of brain-range tissue/);
      assert.doesNotMatch(e.message, /\n/);
      assert.deepEqual([e.data.file, e.data.reason], ['/data/ct-0042.nii.gz', 'no-head']);
      return true;
    });
  });

  it('measures a 512² × 36 scan in well under a second', () => {
    const { volume } = synthVolume(12, { matrix: 512, slices: 36 });
    const start = performance.now();
    measureHead(volume);
    const ms = performance.now() - start;
    assert.ok(ms < 1000, `${ms.toFixed(0)} ms`);
  });
});

describe('readScan refuses, naming the file', () => {
  it('a NIfTI whose head is outside the field of view', async (t) => {
    const dir = await tempDir(t, 'fedgit-intake-head-');
    const { volume } = synthVolume(13, { matrix: 128, slices: 30 });
    await writeNifti(join(dir, 'moved.nii.gz'), moveHead(volume, 1200), { datatype: 'int16', sclInter: -1024 });
    await writeNifti(join(dir, 'ok.nii.gz'), volume, { datatype: 'int16', sclInter: -1024 });
    const ok = await readScan(dir, 'ok.nii.gz');
    assert.equal(ok.source, 'nifti');
    assert.ok(ok.head.brainMl > 1000);
    await assert.rejects(readScan(dir, 'moved.nii.gz'), (e: unknown) => {
      assert.ok(e instanceof DataInvalid, String(e));
      assert.ok(e.message.startsWith(`${join(dir, 'moved.nii.gz')}: no head found in the field of view`), e.message);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });

  it('a NIfTI without orientation (sform_code and qform_code both 0)', async (t) => {
    const dir = await tempDir(t, 'fedgit-intake-orient-');
    const file = join(dir, 'no-orientation.nii');
    await writeNifti(file, synthVolume(14, { matrix: 64, slices: 28 }).volume, { datatype: 'int16', sclInter: -1024 });
    const bytes = await readFile(file);
    bytes.writeInt16LE(0, 252); // qform_code
    bytes.writeInt16LE(0, 254); // sform_code
    await writeFile(file, bytes);
    await assert.rejects(readScan(dir, 'no-orientation.nii'), (e: unknown) => {
      assert.ok(e instanceof DataInvalid, String(e));
      assert.equal(e.message, `${file}: no orientation: sform_code and qform_code are both 0, so there is no voxel-to-world affine; left and right are undefined`);
      return true;
    });
  });

  it('a name that is neither a NIfTI file nor a folder, and a missing one', async (t) => {
    const dir = await tempDir(t, 'fedgit-intake-kind-');
    await writeFile(join(dir, 'scan.mha'), 'x');
    await assert.rejects(readScan(dir, 'scan.mha'), /scan\.mha: not a NIfTI file \(\.nii or \.nii\.gz\) or a folder holding a DICOM series/);
    await assert.rejects(readScan(dir, 'ghost.nii'), /ghost\.nii: no such file or folder/);
  });
});
