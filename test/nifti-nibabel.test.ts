import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { synthVolume } from '../edge-app/cohort/synth-volume.js';
import { SYNTH_STORAGE } from '../edge-app/cohort/synth-cohort.js';
import { readNifti, writeNifti } from '../edge-app/nifti/read-nifti.js';

/**
 * Cross-checks readNifti against nibabel. nibabel writes edge cases
 * (big-endian, scaled, qform-only oblique with qfac −1, float64, uint8 …) with
 * full control of the header; then it dumps every file in the folder — those
 * and the ones fedgit wrote — as JSON plus float32 voxels (x fastest).
 */
const PYTHON = String.raw`
import json, os, sys
import numpy as np
import nibabel as nib

mode, folder = sys.argv[1], sys.argv[2]

def rotation(a, b, c):
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz @ ry @ rx

def write(name, raw, dtype, affine, slope=np.nan, inter=np.nan, endian='<', sform=True, qform=True, descrip=b''):
    hdr = nib.Nifti1Header(endianness=endian)
    hdr.set_data_dtype(np.dtype(dtype).newbyteorder(endian))
    hdr.set_data_shape(raw.shape)
    hdr.set_qform(affine, code=1 if qform else 0)
    hdr.set_sform(affine, code=1 if sform else 0)
    hdr['scl_slope'], hdr['scl_inter'] = slope, inter
    hdr['vox_offset'] = 352
    hdr['descrip'] = descrip
    block = hdr.binaryblock + b'\0' * 4 + np.asarray(raw).astype(np.dtype(dtype).newbyteorder(endian)).tobytes(order='F')
    path = os.path.join(folder, name)
    if name.endswith('.gz'):
        import gzip
        with gzip.open(path, 'wb') as f: f.write(block)
    else:
        with open(path, 'wb') as f: f.write(block)

if mode == 'make':
    rng = np.random.default_rng(3)
    shape = (7, 5, 4)
    oblique = np.eye(4); oblique[:3, :3] = rotation(0.06, -0.04, 0.09) @ np.diag([0.45, 0.45, 5.0]); oblique[:3, 3] = [110, -95, -70]
    flipped = oblique.copy(); flipped[:3, 0] *= -1        # det < 0: qform needs qfac = -1
    flipped_y = oblique.copy(); flipped_y[:3, 1] *= -1
    write('be-int16-scaled.nii', rng.integers(-2000, 3000, shape), 'i2', oblique, 0.5, -1024, endian='>')
    write('be-float32.nii.gz', rng.normal(30, 10, shape), 'f4', flipped_y, endian='>')
    write('le-int16-plain.nii.gz', rng.integers(-1024, 2000, shape), 'i2', oblique, 1, -1024)
    write('qform-only-flipped.nii', rng.integers(-1000, 1000, shape), 'i2', flipped, sform=False)
    write('qform-only-oblique-be.nii.gz', rng.integers(0, 100, shape), 'u2', oblique, sform=False, endian='>')
    write('float64.nii', rng.normal(0, 100, shape), 'f8', flipped)
    write('uint8-scaled.nii.gz', rng.integers(0, 256, shape), 'u1', oblique, 2, -100)
    write('int8.nii', rng.integers(-128, 128, shape), 'i1', oblique, 1, 0)
    write('int32-be.nii', rng.integers(-100000, 100000, shape), 'i4', oblique, endian='>')
    write('slope-zero.nii', rng.integers(-100, 100, shape), 'i2', oblique, 0, 55)
    write('long-description.nii.gz', rng.integers(-100, 100, shape), 'i2', oblique, descrip=b'a description much longer than 21 characters')
    single = np.zeros((6, 4, 1)); single[2, 1, 0] = 9
    write('single-slice.nii', single, 'i2', oblique)
else:
    out = {}
    for name in sorted(os.listdir(folder)):
        if not (name.endswith('.nii') or name.endswith('.nii.gz')): continue
        img = nib.load(os.path.join(folder, name))
        data = np.asarray(img.get_fdata(dtype=np.float64), dtype='<f4')
        data.ravel(order='F').tofile(os.path.join(folder, name + '.f32'))
        out[name] = {
            'shape': list(img.shape), 'affine': img.affine.ravel().tolist(),
            'qform': img.get_qform().ravel().tolist(), 'descrip': img.header['descrip'].item().decode('latin1'),
        }
    json.dump(out, sys.stdout)
`;

/** python3 with nibabel: $FEDGIT_PYTHON, else python3 on PATH, else the system one (apt's python3-nibabel). */
function findPython(): string {
  const candidates = [process.env.FEDGIT_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import nibabel, numpy'], { encoding: 'utf8' });
    if (probe.status === 0) return python;
  }
  assert.fail(`nibabel is not available (tried ${candidates.join(', ')}): install python3-nibabel (apt) or set FEDGIT_PYTHON`);
}

function runPython(python: string, mode: 'make' | 'dump', folder: string): string {
  const run = spawnSync(python, ['-c', PYTHON, mode, folder], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(run.status, 0, `python ${mode} failed: ${run.stderr}`);
  return run.stdout;
}

type Dump = Record<string, { shape: number[]; affine: number[]; qform: number[]; descrip: string }>;

describe('readNifti agrees with nibabel', () => {
  let dir: string;
  let python: string;
  let dump: Dump;

  before(async () => {
    python = findPython();
    dir = await mkdtemp(join(tmpdir(), 'fedgit-nifti-nib-'));
    runPython(python, 'make', dir);
    // Files fedgit writes: the synthetic CT (int16 scaled, flipped axes) and float32 / big-endian variants.
    const synth = synthVolume(11, { matrix: 48, slices: 6 });
    await writeNifti(join(dir, 'fedgit-synth.nii.gz'), synth.volume, SYNTH_STORAGE);
    await writeNifti(join(dir, 'fedgit-float32.nii'), synth.volume, { datatype: 'float32' });
    await writeNifti(join(dir, 'fedgit-be-int16.nii'), synth.volume, { datatype: 'int16', littleEndian: false, sclSlope: 0.25, sclInter: 3 });
    dump = JSON.parse(runPython(python, 'dump', dir)) as Dump;
  });
  after(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('dumps every file', async () => {
    const files = (await readdir(dir)).filter((f) => /\.nii(\.gz)?$/.test(f)).sort();
    assert.equal(files.length, 15);
    assert.deepEqual(Object.keys(dump).sort(), files);
  });

  const names = [
    'be-int16-scaled.nii', 'be-float32.nii.gz', 'le-int16-plain.nii.gz', 'qform-only-flipped.nii', 'qform-only-oblique-be.nii.gz',
    'float64.nii', 'uint8-scaled.nii.gz', 'int8.nii', 'int32-be.nii', 'slope-zero.nii', 'long-description.nii.gz', 'single-slice.nii',
    'fedgit-synth.nii.gz', 'fedgit-float32.nii', 'fedgit-be-int16.nii',
  ];
  for (const name of names) {
    it(name, async () => {
      const expected = dump[name]!;
      const ours = await readNifti(join(dir, name));
      assert.deepEqual([...ours.dims], [...expected.shape, 1, 1].slice(0, 3));
      ours.affine.forEach((a, n) => assert.ok(Math.abs(a - expected.affine[n]!) < 1e-4, `${name} affine[${n}]: ${a} vs nibabel ${expected.affine[n]}`));
      assert.equal(ours.description, expected.descrip);
      const raw = await readFile(join(dir, `${name}.f32`));
      const theirs = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      assert.equal(ours.hu.length, theirs.length);
      for (let n = 0; n < theirs.length; n++) {
        const tolerance = 1e-6 * Math.max(1, Math.abs(theirs[n]!));
        if (Math.abs(ours.hu[n]! - theirs[n]!) > tolerance) assert.fail(`${name} voxel ${n}: ${ours.hu[n]} vs nibabel ${theirs[n]}`);
      }
      if (name.startsWith('fedgit-')) {
        // Our qform must describe the same geometry as our sform.
        expected.qform.forEach((q, n) => assert.ok(Math.abs(q - expected.affine[n]!) < 1e-3, `${name} qform[${n}]: ${q} vs sform ${expected.affine[n]}`));
      }
    });
  }
});
