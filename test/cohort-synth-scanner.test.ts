/**
 * The scanner-space generator (profiles): anatomy lands in world space exactly where the stated
 * pose and affine put it, in every storage order, tilt and storage type; nibabel reads the files
 * the same way readNifti does and names the same axis codes; the two hospitals differ as their
 * profiles say; the labels agree with the image.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { SYNTH_PROFILES, SYNTH_TRUTH_FILE, readLabelsCsv, synthCohort, synthScannerVolume, withOverrides, type ScannerTruth, type SynthProfile } from '../edge-app/cohort/index.js';
import { REGION_ELLIPSOIDS, headHu } from '../edge-app/cohort/synth-anatomy.js';
import { applyAffine, invertAffine } from '../edge-app/nifti/affine.js';
import { readNifti, writeNifti } from '../edge-app/nifti/read-nifti.js';
import { PYTHON } from './helpers/python.js';
import { tempDir } from './helpers/temp.js';

/** Every region of the symptomatic side lesioned across its whole extent by 300 HU; no noise, no bias. */
const MARKED: SynthProfile = {
  ...withOverrides(SYNTH_PROFILES.independent!, { noiseHu: [0, 0], biasHu: [0, 0], lesionRate: 1, regionRate: 1, dropHu: [300, 300], sliceMm: [2.5] }),
  lesion: { dropHu: [300, 300], regionRate: 1, extent: [3, 3], borderMm: [0, 0] },
  coverageMm: [190, 190],
};
const isMarked = (hu: number) => hu < -50 && hu > -700;

/** Centroid (MNI mm) of the marked tissue of a head, on a 1 mm grid around the regions. */
function markedCentroidMni(truth: ScannerTruth): [number, number, number] {
  const sum: [number, number, number] = [0, 0, 0];
  let n = 0;
  for (let z = -30; z <= 85; z++) for (let y = -95; y <= 70; y++) for (let x = -75; x <= 75; x++) {
    if (isMarked(headHu(truth.head, x, y, z))) { sum[0] += x; sum[1] += y; sum[2] += z; n++; }
  }
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}

describe('scanner-space synthetic CT', () => {
  it('puts anatomy in world space exactly where the stated pose and affine say (orientations, tilt, storage types)', async (t) => {
    const dir = await tempDir(t, 'fedgit-synth-pose-');
    const cases = [
      { orientation: 'RAS', storage: 'int16', tilt: 0 },
      { orientation: 'LPS', storage: 'uint16', tilt: 15 },
      { orientation: 'LAS', storage: 'float32', tilt: 9 },
      { orientation: 'PLI', storage: 'int16', tilt: 4 },
    ] as const;
    for (const [n, c] of cases.entries()) {
      const profile = withOverrides(MARKED, { orientation: [c.orientation], storage: [c.storage], tiltDeg: [c.tilt, c.tilt] });
      const made = synthScannerVolume(100 + n, { profile: { ...profile, lesion: MARKED.lesion, coverageMm: MARKED.coverageMm }, matrix: 128 });
      const file = path.join(dir, `${n}.nii.gz`);
      await writeNifti(file, made.volume, made.storage);
      const read = await readNifti(file);
      assert.equal(read.datatype, c.storage);
      const sum: [number, number, number] = [0, 0, 0];
      let count = 0;
      const [nx, ny, nz] = read.dims;
      for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
        if (!isMarked(read.hu[(k * ny + j) * nx + i]!)) continue;
        const w = applyAffine(read.affine, i, j, k);
        sum[0] += w[0]; sum[1] += w[1]; sum[2] += w[2]; count++;
      }
      const measured = sum.map((s) => s / count);
      const expected = applyAffine(made.truth.mniToWorld, ...markedCentroidMni(made.truth));
      const error = Math.hypot(measured[0]! - expected[0], measured[1]! - expected[1], measured[2]! - expected[2]);
      assert.ok(count > 1000, `${c.orientation}: ${count} marked voxels`);
      assert.ok(error < 1, `${c.orientation} ${c.storage} tilt ${c.tilt}°: marked centroid at ${measured.map((v) => v.toFixed(1))}, pose says ${expected.map((v) => v.toFixed(1))} (${error.toFixed(2)} mm)`);
      // The lesioned side is where the label says, in world terms: the head's own x axis, posed.
      const centroidMni = markedCentroidMni(made.truth);
      assert.equal(Math.sign(centroidMni[0]), made.hemisphere === 'L' ? -1 : 1);
      // The table offset is real: the head is about a metre and more below the isocentre.
      assert.ok(expected[2] < -1000, `world z ${expected[2]}`);
    }
  });

  it('readNifti and nibabel agree on the storage variants, and nibabel names the stated axis codes', async (t) => {
    const dir = await tempDir(t, 'fedgit-synth-nib-');
    const storages = ['int16', 'uint16', 'float32'] as const;
    const volumes: Record<string, ScannerTruth> = {};
    for (const [n, storage] of storages.entries()) {
      // each storage type with two orientations (one per volume: the first two of the rotated list)
      const orientation = [['LPS', 'RAS'], ['RAS', 'LAS'], ['LAS', 'LPS']][n]!;
      const profile = withOverrides(SYNTH_PROFILES.independent!, { orientation, storage: [storage], sliceMm: [5] });
      const sub = path.join(dir, storage);
      await synthCohort({ outDir: sub, count: 3, seed: 4 + n, matrix: 40, profile });
      const truth = JSON.parse(await readFile(path.join(sub, SYNTH_TRUTH_FILE), 'utf8')) as { volumes: Record<string, ScannerTruth> };
      for (const [file, v] of Object.entries(truth.volumes)) volumes[`${storage}/${file}`] = v;
    }
    assert.equal(new Set(Object.values(volumes).map((v) => v.orientation)).size, 3, 'every orientation drawn');
    const script = String.raw`
import json, sys, os
import numpy as np, nibabel as nib
out = {}
for sub in sorted(os.listdir(sys.argv[1])):
  for leaf in sorted(os.listdir(os.path.join(sys.argv[1], sub))):
    if not leaf.endswith('.nii.gz'): continue
    name = sub + '/' + leaf
    img = nib.load(os.path.join(sys.argv[1], name))
    data = np.asarray(img.get_fdata(dtype=np.float64), dtype='<f4')
    out[name] = {'affine': img.affine.ravel().tolist(), 'axcodes': ''.join(nib.aff2axcodes(img.affine)), 'dtype': str(img.get_data_dtype()),
                 'slope': float(img.dataobj.slope), 'inter': float(img.dataobj.inter), 'sum': float(data.astype(np.float64).sum()),
                 'sample': data.ravel(order='F')[::97].tolist()}
json.dump(out, sys.stdout)
`;
    const run = spawnSync(PYTHON, ['-c', script, dir], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(run.status, 0, `nibabel failed: ${run.stderr}`);
    const dump = JSON.parse(run.stdout) as Record<string, { affine: number[]; axcodes: string; dtype: string; slope: number; inter: number; sum: number; sample: number[] }>;
    for (const [file, truth] of Object.entries(volumes)) {
      const theirs = dump[file]!;
      const ours = await readNifti(path.join(dir, file));
      assert.equal(theirs.axcodes, truth.orientation, `${file}: nibabel says ${theirs.axcodes}`);
      assert.equal(theirs.dtype, { int16: 'int16', uint16: 'uint16', float32: 'float32' }[truth.storage]);
      if (truth.storage === 'uint16') assert.equal(theirs.inter, -1024);
      ours.affine.slice(0, 12).forEach((a, n) => assert.ok(Math.abs(a - theirs.affine[n]!) < 1e-4, `${file} affine[${n}]: ${a} vs ${theirs.affine[n]}`));
      theirs.sample.forEach((v, n) => assert.ok(Math.abs(ours.hu[n * 97]! - v) <= 1e-3 * Math.max(1, Math.abs(v)), `${file} voxel ${n * 97}: ${ours.hu[n * 97]} vs ${v}`));
      const sum = ours.hu.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - theirs.sum) <= 1e-5 * Math.abs(theirs.sum) + 1, `${file} sum ${sum} vs ${theirs.sum}`);
      // gantry tilt is stored as a sheared affine: the slice axis runs along world z, the rows are tilted
      const a = ours.affine;
      const tiltOfRows = Math.max(...[0, 1].map((c) => Math.atan2(Math.abs(a[8 + c]!), Math.hypot(a[c]!, a[4 + c]!)))) * 180 / Math.PI;
      assert.ok(Math.abs(tiltOfRows - Math.abs(truth.tiltDeg)) < 0.01, `${file}: rows tilted ${tiltOfRows}°, stated ${truth.tiltDeg}°`);
      assert.ok(Math.abs(ours.affine[2]!) < 1e-9 && Math.abs(ours.affine[6]!) < 1e-9, `${file}: slices step along world z only`);
    }
  });

  it('the two hospitals differ as their profiles say (non-IID), and the test mix draws both', () => {
    const draw = (name: string, n: number) => Array.from({ length: n }, (_, s) => synthScannerVolume(5000 + s, { profile: SYNTH_PROFILES[name]!, matrix: 8 }));
    const a = draw('hospital-a', 300), b = draw('hospital-b', 300), mixed = draw('mixed', 100);
    const values = <T>(vs: typeof a, f: (t: ScannerTruth) => T) => new Set(vs.map((v) => f(v.truth)));
    assert.deepEqual([...values(a, (t) => t.sliceMm)].sort(), [1, 2.5]);
    assert.deepEqual([...values(b, (t) => t.sliceMm)], [5]);
    assert.deepEqual([...values(a, (t) => t.storage)], ['int16']);
    assert.deepEqual([...values(b, (t) => t.storage)].sort(), ['float32', 'uint16']);
    assert.ok(Math.max(...a.map((v) => v.truth.noiseHu)) <= Math.min(...b.map((v) => v.truth.noiseHu)), 'A is less noisy than B');
    assert.ok(Math.max(...a.map((v) => v.truth.tiltDeg)) < Math.min(...b.map((v) => v.truth.tiltDeg)), 'B tilts more');
    const lesioned = (vs: typeof a) => vs.filter((v) => v.labels.some((l) => l === 1)).length / vs.length;
    assert.ok(lesioned(a) - lesioned(b) > 0.1, `lesion rates A ${lesioned(a)} vs B ${lesioned(b)}`);
    assert.deepEqual([...values(mixed, (t) => t.scanner)].sort(), ['hospital-a', 'hospital-b']);
    // pose within the stated ranges, table offset included
    for (const v of [...a, ...b]) {
      const [x, y, z] = v.truth.headCentreWorld;
      assert.ok(Math.abs(x) <= 10 && Math.abs(y) <= 10 && z >= -1300 && z <= -1100, `head centre ${v.truth.headCentreWorld}`);
      assert.ok(v.truth.rotationDeg.every((r) => Math.abs(r) <= 8));
    }
  });

  it('labels agree with the image: labelled regions are darker than their mirror, sampled through the pose', async (t) => {
    const dir = await tempDir(t, 'fedgit-synth-labels-');
    const profile = withOverrides(SYNTH_PROFILES.mixed!, { lesionRate: 1, regionRate: 0.5 });
    await synthCohort({ outDir: dir, count: 10, seed: 21, matrix: 128, profile });
    const { volumes } = JSON.parse(await readFile(path.join(dir, SYNTH_TRUTH_FILE), 'utf8')) as { volumes: Record<string, ScannerTruth> };
    const differences: number[] = [];
    for (const row of await readLabelsCsv(path.join(dir, 'labels.csv'))) {
      const v = await readNifti(path.join(dir, row.file));
      const toVoxel = invertAffine(v.affine);
      const at = (mni: [number, number, number]): number | undefined => {
        const [i, j, k] = applyAffine(toVoxel, ...applyAffine(volumes[row.file]!.mniToWorld, ...mni)).map(Math.round) as [number, number, number];
        if (i < 0 || j < 0 || k < 0 || i >= v.dims[0] || j >= v.dims[1] || k >= v.dims[2]) return undefined;
        return v.hu[(k * v.dims[1] + j) * v.dims[0] + i];
      };
      row.labels.forEach((label, r) => {
        if (!label) return;
        const e = REGION_ELLIPSOIDS[r]!;
        let diff = 0, cells = 0;
        for (let dz = -0.6; dz <= 0.6; dz += 0.2) for (let dy = -0.6; dy <= 0.6; dy += 0.2) for (let dx = -0.6; dx <= 0.6; dx += 0.2) {
          if (dx * dx + dy * dy + dz * dz > 0.36) continue;
          const left: [number, number, number] = [e.cx + dx * e.ax, e.cy + dy * e.ay, e.cz + dz * e.az];
          const a = at(left), b = at([-left[0], left[1], left[2]]);
          if (a === undefined || b === undefined || Math.min(a, b) < 10 || Math.max(a, b) > 60) continue;
          diff += row.hemisphere === 'L' ? a - b : b - a;
          cells++;
        }
        if (cells > 0) differences.push(diff / cells);
      });
    }
    const darker = differences.filter((d) => d < 0).length;
    const mean = differences.reduce((a, b) => a + b, 0) / differences.length;
    assert.ok(differences.length >= 30, `only ${differences.length} lesions`);
    assert.ok(darker >= 0.8 * differences.length, `${darker}/${differences.length} darker`);
    assert.ok(mean < -1, `mean symptomatic − mirror ${mean.toFixed(2)} HU`);
  });
});

describe('fedgit synth with a profile and explicit settings', () => {
  it('writes an independent cohort with the settings asked for, recorded in the manifest', async (t) => {
    const { runCli } = await import('./helpers/temp.js');
    const dir = await tempDir(t, 'fedgit-synth-cli-');
    const r = await runCli(['synth', '--profile', 'independent', '--seed', '777', '--count', '3', '--matrix', '32', '--out', 'ind',
      '--slice-mm', '5', '--storage', 'float32', '--orientation', 'LPI', '--table-z=-900:-900', '--tilt', '12'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[synth\] profile independent\+custom/);
    assert.match(r.stdout, /ms per volume\)/);
    const manifest = JSON.parse(await readFile(path.join(dir, 'ind', '.fedgit-synth.json'), 'utf8')) as { version: number; seed: number; profile: SynthProfile };
    assert.equal(manifest.version, 3);
    assert.equal(manifest.seed, 777);
    assert.equal(manifest.profile.name, 'independent+custom');
    const { volumes } = JSON.parse(await readFile(path.join(dir, 'ind', SYNTH_TRUTH_FILE), 'utf8')) as { volumes: Record<string, ScannerTruth> };
    assert.equal(Object.keys(volumes).length, 3);
    for (const [file, v] of Object.entries(volumes)) {
      assert.deepEqual([v.sliceMm, v.storage, v.orientation, v.tiltDeg, v.headCentreWorld[2]], [5, 'float32', 'LPI', 12, -900]);
      const read = await readNifti(path.join(dir, 'ind', file));
      assert.equal(read.datatype, 'float32');
      assert.ok(read.affine[10]! < 0, 'I: the slice axis runs downwards');
    }
  });
});
