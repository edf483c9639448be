import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { synthVolume } from '../edge-app/cohort/synth-volume.js';
import { invertAffine, multiplyAffines, writeNifti, type NiftiVolume } from '../edge-app/nifti/index.js';
import { lpsToRas, parseTransformParameters, registerVolume, resampleToTemplate, transformMatrixLps } from '../edge-app/registration/index.js';
import { parseFinalMetric } from '../edge-app/registration/quality.js';
import { Aborted, AppFailed, DataInvalid } from '../operator/errors.js';
import { flippedStorage, maxDisplacementMm, moved, poseMatrix, rotationDeg, type Pose } from './helpers/registration-copies.js';
import { tempDir } from './helpers/temp.js';

/** The brain's bounding box in MNI mm (anatomical model: centre (0, −17, 12), semi-axes 68, 88, 64). */
const BRAIN_BOX = { min: [-68, -105, -52], max: [68, 71, 76] };
const HEAD_CENTRE: [number, number, number] = [0, -17, 12];

test('an elastix Euler transform becomes the same map in RAS+', () => {
  const text = `(Transform "EulerTransform")
(NumberOfParameters 6)
(TransformParameters 0 0 ${Math.PI / 2} 1 2 3)
(InitialTransformParametersFileName "NoInitialTransform")
(CenterOfRotationPoint 10 0 0)
(ComputeZYX "false")`;
  const lps = transformMatrixLps(parseTransformParameters(text));
  // 90° about z around (10, 0, 0), then (1, 2, 3): LPS (11, 0, 0) → (10, 1, 0) + (1, 2, 3).
  const p = [0, 1, 2].map((r) => lps[r * 4]! * 11 + lps[r * 4 + 3]!);
  assert.deepEqual(p.map((v) => +v.toFixed(9)), [11, 3, 3]);
  // In RAS the same physical point is (−11, 0, 0) and lands on (−11, −3, 3).
  const ras = lpsToRas(lps);
  const q = [0, 1, 2].map((r) => ras[r * 4]! * -11 + ras[r * 4 + 3]!);
  assert.deepEqual(q.map((v) => +v.toFixed(9)), [-11, -3, 3]);
  assert.throws(() => parseTransformParameters('(Transform "BSplineTransform")'), /not supported/);
  assert.equal(parseFinalMetric('Final metric value  = -0.9\n...\nFinal metric value  = -1.25\n'), -1.25);
});

const base: NiftiVolume = { ...synthVolume(7, { matrix: 256, slices: 40 }).volume, file: 'base.nii', datatype: 'float32' };

test('registration recovers shifted, rotated, tilted and re-stored copies of one head within 1 mm and 1°', async (t) => {
  const dir = await tempDir(t);
  const baseFile = path.join(dir, 'base.nii.gz');
  await writeNifti(baseFile, base);
  const cacheDir = path.join(dir, 'cache');
  const first = await registerVolume({ file: baseFile, cacheDir });
  assert.equal(first.cached, false);

  await t.test('the base head lands on the template: midline kept, no rotation (synthVolume puts it at MNI up to scale and a few mm of y and z)', () => {
    const centre = multiplyAffines(first.toTemplate, [1, 0, 0, HEAD_CENTRE[0], 0, 1, 0, HEAD_CENTRE[1], 0, 0, 1, HEAD_CENTRE[2], 0, 0, 0, 1]);
    assert.ok(Math.abs(centre[3]!) < 1, `midline moved by ${centre[3]} mm`);
    assert.ok(rotationDeg(first.toTemplate) < 1, `rotated by ${rotationDeg(first.toTemplate)}°`);
    assert.ok(first.quality.finalMetric < -1, JSON.stringify(first.quality));
    assert.ok(first.quality.symmetry > 0.3, JSON.stringify(first.quality));
  });

  await t.test('a second registration of the same file comes from the cache', async () => {
    const again = await registerVolume({ file: baseFile, cacheDir });
    assert.equal(again.cached, true);
    assert.deepEqual(again.toTemplate, first.toTemplate);
    assert.deepEqual(again.quality, first.quality);
  });

  const about = HEAD_CENTRE;
  const cases: { name: string; pose?: Pose; flip?: boolean }[] = [
    { name: 'shifted (+10, −10) mm and a table offset of −1200 mm in z', pose: { shiftMm: [10, -10, -1200] } },
    { name: 'rotated 8° about z and shifted −10 mm in x', pose: { rotateDeg: [0, 0, 8], shiftMm: [-10, 0, 0], about } },
    { name: 'rotated −8° about y', pose: { rotateDeg: [0, -8, 0], about } },
    { name: 'tilted 15° about x, as a gantry tilt', pose: { rotateDeg: [15, 0, 0], about } },
    { name: 'stored LPS instead of RAS (i and j reversed)', flip: true },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const copy = c.flip ? flippedStorage(base, 'flipped.nii') : moved(base, c.pose!, 'moved.nii');
      const r = await registerVolume({ volume: copy });
      // copy world = pose(base world), so toTemplate(copy) · pose should be toTemplate(base).
      const recovered = multiplyAffines(r.toTemplate, c.flip ? poseMatrix({}) : poseMatrix(c.pose!));
      const mm = maxDisplacementMm(recovered, first.toTemplate, BRAIN_BOX);
      const deg = rotationDeg(multiplyAffines(recovered, invertAffine(first.toTemplate)));
      t.diagnostic(`${c.name}: ${mm.toFixed(2)} mm, ${deg.toFixed(2)}°, ${r.seconds.toFixed(1)} s, quality ${JSON.stringify(r.quality)}`);
      assert.ok(mm < 1, `${mm.toFixed(2)} mm over the brain's bounding box`);
      assert.ok(deg < 1, `${deg.toFixed(2)}°`);
    });
  }
});

test('a scan resamples onto the template grid by its toTemplate matrix, NaN outside its field of view', () => {
  // synthVolume's world is MNI up to a few mm, so the identity is nearly right for it.
  const slab = synthVolume(7, { matrix: 256, slices: 10 }).volume; // 50 mm around z ≈ 12
  const identity = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
  const grid = { dims: [91, 109, 91] as const, affine: [2, 0, 0, -90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1] };
  const hu = resampleToTemplate(slab, identity, grid);
  const at = (x: number, y: number, z: number) => hu[(((z + 72) / 2) * 109 + (y + 126) / 2) * 91 + (x + 90) / 2]!;
  assert.ok(Number.isNaN(at(0, 0, 60)), 'above the slab');
  assert.ok(Math.abs(at(-18, 10, 10) - 40) < 10, `caudate ${at(-18, 10, 10)} HU`);
  assert.ok(at(-60, -16, 12) > 15 && at(-60, -16, 12) < 50, `cortex ${at(-60, -16, 12)} HU`);
  assert.ok(at(-88, -120, 12) < -900, `air ${at(-88, -120, 12)} HU`);
  // Moving the scan's world moves where it lands: a 10 mm shift in x, undone by toTemplate, samples the same.
  const shifted = moved({ ...slab, file: 's.nii', datatype: 'float32' }, { shiftMm: [10, 0, 0] });
  const back = resampleToTemplate(shifted, poseMatrix({ shiftMm: [-10, 0, 0] }), grid);
  let worst = 0;
  for (let n = 0; n < hu.length; n++) if (hu[n] === hu[n]) worst = Math.max(worst, Math.abs(back[n]! - hu[n]!));
  assert.ok(worst < 1e-3, `differs by ${worst} HU`);
});

test('scans without a head or without the ASPECTS levels are refused in one line naming the file', async (t) => {
  const slab = synthVolume(7, { matrix: 256, slices: 10 }).volume; // 50 mm: the ganglionic level only
  const cases = [
    { name: 'no head', volume: { ...base, file: 'air.nii', hu: base.hu.map((_, n) => -1000 + (n % 7)) }, message: /^air\.nii: no head found/ },
    { name: 'a 5 cm slab', volume: { ...base, ...slab, file: 'slab.nii' }, message: /^slab\.nii: the scan covers \d+ % of the supraganglionic ASPECTS level/ },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      await assert.rejects(registerVolume({ volume: c.volume }), (e: unknown) => {
        assert.ok(e instanceof DataInvalid, String(e));
        assert.equal(e.data.file, c.volume.file);
        assert.ok(!e.message.includes('\n'));
        assert.match(e.message, c.message);
        return true;
      });
    });
  }
});

test('an aborted registration and a missing elastix are reported, naming the file', async () => {
  const controller = new AbortController();
  const running = registerVolume({ volume: base, signal: controller.signal });
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(running, (e: unknown) => e instanceof Aborted && e.message.startsWith('base.nii: '));
  await assert.rejects(registerVolume({ volume: base, elastix: '/nonexistent/elastix' }),
    (e: unknown) => e instanceof AppFailed && /^base\.nii: .*apt-get install elastix/.test(e.message));
});
