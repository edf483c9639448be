import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ATLAS_LABELS, atlasLabel, buildAspectsAtlas, buildTemplate, expectedCentroid, loadAtlas, mniGrid, type LabelVolume } from '../edge-app/atlas/index.js';
import { REGION_ANATOMY } from '../edge-app/cohort/regions.js';
import { applyAffine, invertAffine, writeNifti } from '../edge-app/nifti/index.js';
import { DataInvalid } from '../operator/errors.js';
import { tempDir } from './helpers/temp.js';

const template = buildTemplate(2);
const atlas = buildAspectsAtlas(2);

function labelStats(a: LabelVolume, value: number) {
  const [nx, ny, nz] = a.dims;
  let n = 0, si = 0, sj = 0, sk = 0;
  const voxels: number[] = [];
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const at = (k * ny + j) * nx + i;
    if (a.labels[at] !== value) continue;
    n++; si += i; sj += j; sk += k; voxels.push(at);
  }
  const voxelMl = Math.abs(a.affine[0]! * a.affine[5]! * a.affine[10]!) / 1000;
  return { ml: n * voxelMl, centroid: applyAffine(a.affine, si / n, sj / n, sk / n), voxels };
}

test('label values: left C…M6 = 1…10, right = 11…20', () => {
  assert.deepEqual(ATLAS_LABELS.map((l) => l.value), Array.from({ length: 20 }, (_, n) => n + 1));
  assert.equal(atlasLabel('C', 'L'), 1);
  assert.equal(atlasLabel('M6', 'L'), 10);
  assert.equal(atlasLabel('C', 'R'), 11);
  assert.equal(atlasLabel('IC', 'R'), 13);
  assert.deepEqual(new Set(atlas.labels), new Set(Array.from({ length: 21 }, (_, n) => n)));
});

for (const voxelMm of [2, 1] as const) {
  test(`every label at ${voxelMm} mm has the DESIGN §6 volume (±25 %) and centroid (within 5 mm)`, () => {
    const a = voxelMm === 2 ? atlas : buildAspectsAtlas(1);
    for (const { value, region, side } of ATLAS_LABELS) {
      const { ml, centroid } = labelStats(a, value);
      const expectedMl = REGION_ANATOMY.find((r) => r.name === region)!.volumeMl;
      const expected = expectedCentroid(region, side);
      const off = Math.hypot(centroid[0] - expected[0], centroid[1] - expected[1], centroid[2] - expected[2]);
      assert.ok(Math.abs(ml / expectedMl - 1) <= 0.25, `${side} ${region}: ${ml.toFixed(1)} mL, DESIGN §6 says ${expectedMl}`);
      assert.ok(off <= 5, `${side} ${region}: centroid ${centroid.map((c) => c.toFixed(1))} is ${off.toFixed(1)} mm from ${expected}`);
    }
  });
}

test('the right hemisphere mirrors the left voxel for voxel', () => {
  const [nx, ny, nz] = atlas.dims;
  // x = −90 + 2i, so voxel i mirrors voxel nx − 1 − i.
  assert.deepEqual(applyAffine(atlas.affine, (nx - 1) / 2, 0, 0)[0], 0);
  let labelled = 0;
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < (nx - 1) / 2; i++) {
    const left = atlas.labels[(k * ny + j) * nx + i]!, right = atlas.labels[(k * ny + j) * nx + (nx - 1 - i)]!;
    assert.ok(left <= 10 && (right === 0 || right > 10), `voxel ${i},${j},${k}: left side holds ${left}, right ${right}`);
    assert.equal(right, left === 0 ? 0 : left + 10);
    if (left) labelled++;
  }
  assert.ok(labelled > 1000);
});

test('C, L and I lie in the template grey matter, IC in its white matter', () => {
  const share = (value: number, lo: number, hi: number) => {
    const { voxels } = labelStats(atlas, value);
    return voxels.filter((at) => template.hu[at]! >= lo && template.hu[at]! <= hi).length / voxels.length;
  };
  for (const side of ['L', 'R'] as const) {
    for (const region of ['C', 'L', 'I'] as const) {
      const grey = share(atlasLabel(region, side), 35, 45);
      assert.ok(grey >= 0.85, `${side} ${region}: ${(100 * grey).toFixed(0)} % grey (35–45 HU)`);
    }
    const white = share(atlasLabel('IC', side), 20, 30);
    assert.ok(white >= 0.85, `${side} IC: ${(100 * white).toFixed(0)} % white (20–30 HU)`);
    // M1–M3 at the ganglionic level front to back, M4–M6 above them.
    const z = (r: 'M1' | 'M2' | 'M3' | 'M4' | 'M5' | 'M6') => labelStats(atlas, atlasLabel(r, side)).centroid;
    assert.ok(z('M1')[1] > z('M2')[1] && z('M2')[1] > z('M3')[1]);
    assert.ok(z('M4')[2] > z('M1')[2] + 20 && z('M6')[2] > z('M3')[2] + 20);
  }
});

test('the template is a CT head in MNI space: air, scalp, skull, CSF, grey and white matter', () => {
  assert.deepEqual(template.dims, mniGrid(2).dims);
  const at = (x: number, y: number, z: number) => {
    const [i, j, k] = applyAffine(invertAffine(template.affine), x, y, z).map(Math.round) as [number, number, number];
    return template.hu[(k * template.dims[1] + j) * template.dims[0] + i]!;
  };
  assert.equal(at(-88, -124, -70), -1000); // corner: air
  assert.equal(at(-18, 9, 10), 40); // caudate: grey
  assert.equal(at(-28, -30, 30), 25); // centrum semiovale: white
  assert.equal(at(-9, -12, 18), 8); // lateral ventricle: CSF
  // Along x from the midline outwards at the ganglionic level: brain, then CSF, bone above 700 HU, scalp, air.
  const line = Array.from({ length: 45 }, (_, n) => at(-2 * n, -17, 12));
  assert.ok(Math.max(...line) >= 700, `no skull on the line: ${line.join(' ')}`);
  assert.equal(line.at(-1), -1000);
});

test('a site\'s own template and atlas files are accepted when they are in MNI space', async (t) => {
  const dir = await tempDir(t);
  const templateFile = path.join(dir, 'template.nii.gz'), atlasFile = path.join(dir, 'atlas.nii.gz');
  await writeNifti(templateFile, template, { datatype: 'int16' });
  await writeNifti(atlasFile, { ...atlas, hu: Float32Array.from(atlas.labels), description: 'atlas' }, { datatype: 'uint8' });
  const loaded = await loadAtlas({ templateFile, atlasFile });
  assert.equal(loaded.template.file, templateFile);
  assert.equal(loaded.atlas.file, atlasFile);
  assert.deepEqual(loaded.atlas.labels, atlas.labels);
});

test('a site\'s files that are not an MNI CT template or an ASPECTS atlas are refused, naming the file', async (t) => {
  const dir = await tempDir(t);
  const good = path.join(dir, 'template.nii');
  await writeNifti(good, template);
  const cases: { name: string; file: string; write: () => Promise<void>; message: RegExp; role: 'template' | 'atlas' }[] = [
    {
      name: 'left and right labels swapped', file: path.join(dir, 'swapped.nii'), role: 'atlas', message: /label 1 \(L C\).*MNI/,
      write: () => writeNifti(path.join(dir, 'swapped.nii'), { ...atlas, hu: Float32Array.from(atlas.labels, (v) => (v === 0 ? 0 : v > 10 ? v - 10 : v + 10)), description: '' }),
    },
    {
      name: 'a label outside 0…20', file: path.join(dir, 'values.nii'), role: 'atlas', message: /holds 25/,
      write: () => writeNifti(path.join(dir, 'values.nii'), { ...atlas, hu: Float32Array.from(atlas.labels, (v) => (v === 3 ? 25 : v)), description: '' }),
    },
    {
      name: 'an atlas 60 mm away', file: path.join(dir, 'shifted.nii'), role: 'atlas', message: /MNI/,
      write: () => writeNifti(path.join(dir, 'shifted.nii'), { ...atlas, affine: atlas.affine.map((v, n) => (n === 11 ? v + 60 : v)), hu: Float32Array.from(atlas.labels), description: '' }),
    },
    {
      name: 'a template scaled to 0…1', file: path.join(dir, 'scaled.nii'), role: 'template', message: /Hounsfield/,
      write: () => writeNifti(path.join(dir, 'scaled.nii'), { ...template, hu: template.hu.map((v) => (Math.min(Math.max(v, 0), 100)) / 100) }),
    },
    {
      name: 'a template without orientation', file: path.join(dir, 'bare.nii'), role: 'template', message: /no orientation/,
      write: () => writeNifti(path.join(dir, 'bare.nii'), { ...template, affine: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1] }),
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      await c.write();
      await assert.rejects(loadAtlas(c.role === 'atlas' ? { templateFile: good, atlasFile: c.file } : { templateFile: c.file }), (e: unknown) => {
        assert.ok(e instanceof DataInvalid, String(e));
        assert.equal(e.data.file, c.file);
        assert.ok(e.message.startsWith(`${c.file}: `), e.message);
        assert.ok(!e.message.includes('\n'));
        assert.match(e.message, c.message);
        return true;
      });
    });
  }
});
