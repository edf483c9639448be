/**
 * DICOM series → NIfTI through dcm2niix, on real converter output. The series are written in the
 * test with pydicom from a synthetic head (Debian's python3-pydicom, starting from its real
 * sample CT slice, CT_small.dcm, for every attribute we do not set): ImagePositionPatient,
 * ImageOrientationPatient (LPS), PixelSpacing, SliceThickness and Rescale Slope/Intercept.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { DataInvalid } from '../operator/errors.js';
import { loadCohort } from '../edge-app/cohort/load-cohort.js';
import { renderLabelsCsv } from '../edge-app/cohort/labels-csv.js';
import { synthVolume } from '../edge-app/cohort/synth-volume.js';
import { parseDcm2niixLog } from '../edge-app/intake/dcm2niix-log.js';
import { convertDicomSeries } from '../edge-app/intake/dicom.js';
import { decideConversion, sliceSpacingProblem } from '../edge-app/intake/series-check.js';
import { readScan } from '../edge-app/intake/resolve-volume.js';
import { applyAffine, invertAffine } from '../edge-app/nifti/affine.js';
import { readNifti, writeNifti } from '../edge-app/nifti/read-nifti.js';
import { preprocess } from '../edge-app/preprocess/preprocess.js';
import { PYTHON } from './helpers/python.js';
import { tempDir } from './helpers/temp.js';

const PY = String.raw`
import copy, json, os, sys
import numpy as np
import nibabel as nib

mode = sys.argv[1]
if mode == 'series':
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid, ExplicitVRLittleEndian
    src, out, drop, tilt_deg = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    img = nib.load(src)
    hu = np.asarray(img.get_fdata(), dtype=np.float64)
    lps = np.diag([-1.0, -1, 1, 1]) @ img.affine      # NIfTI is RAS+, DICOM patient space LPS
    template = pydicom.dcmread(get_testdata_file('CT_small.dcm'))
    template.remove_private_tags()
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    os.makedirs(out, exist_ok=True)
    nx, ny, nz = hu.shape
    row = lps[:3, 0] / np.linalg.norm(lps[:3, 0])
    col = lps[:3, 1] / np.linalg.norm(lps[:3, 1])
    dx, dy, dz = (float(np.linalg.norm(lps[:3, n])) for n in range(3))
    for k in range(nz):
        if k == drop: continue
        ds = copy.deepcopy(template)
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID = series, study, frame
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SeriesNumber, ds.InstanceNumber = 7, k + 1
        ds.Rows, ds.Columns = ny, nx
        ds.PixelSpacing = [f'{dy:.6f}', f'{dx:.6f}']          # row spacing, column spacing
        ds.SliceThickness = ds.SpacingBetweenSlices = f'{dz:.6f}'
        ds.ImageOrientationPatient = [f'{v:.8f}' for v in (*row, *col)]
        pos = lps @ np.array([0, 0, k, 1.0])
        ds.ImagePositionPatient = [f'{v:.6f}' for v in pos[:3]]
        ds.SliceLocation = f'{pos[2]:.6f}'
        ds.GantryDetectorTilt = f'{tilt_deg:g}'
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
        for name in ('LargestImagePixelValue', 'SmallestImagePixelValue'):
            if name in ds: delattr(ds, name)
        ds.PixelData = np.rint(hu[:, :, k].T + 1024).astype('<i2').tobytes()   # rows are j, columns i
        ds.save_as(os.path.join(out, f'IM{k + 1:04d}.dcm'), write_like_original=False)
elif mode == 'dump':
    img = nib.load(sys.argv[2])
    np.asarray(img.get_fdata(dtype=np.float64), dtype='<f4').ravel(order='F').tofile(sys.argv[3])
    json.dump({'affine': img.affine.ravel().tolist(), 'shape': list(img.shape)}, sys.stdout)
`;

function dcm2niixInstalled(): boolean {
  return spawnSync(process.env.FEDGIT_DCM2NIIX ?? 'dcm2niix', ['--version'], { stdio: 'ignore' }).error === undefined;
}

/** Fails (never skips) with what to install when pydicom or nibabel is missing. */
function requirePydicom(): void {
  const probe = spawnSync(PYTHON, ['-c', 'import pydicom, nibabel, numpy; from pydicom.data import get_testdata_file; get_testdata_file("CT_small.dcm")'], { encoding: 'utf8' });
  assert.equal(probe.status, 0, `${PYTHON} needs pydicom (with its sample data), nibabel and numpy: install python3-pydicom python3-nibabel (Debian) or set FEDGIT_PYTHON. ${probe.stderr}`);
}

function python(args: string[]): string {
  return execFileSync(PYTHON, ['-c', PY, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
}

type Source = { dir: string; nifti: string; volume: ReturnType<typeof synthVolume>['volume'] };

/** A synthetic head as float32 NIfTI, the source of the DICOM series. */
async function source(t: TestContext, seed: number, affine?: number[]): Promise<Source> {
  const dir = await tempDir(t, 'fedgit-intake-dicom-');
  const synth = synthVolume(seed, { matrix: 128, slices: 30 });
  const volume = affine ? { ...synth.volume, affine } : synth.volume;
  const nifti = join(dir, 'source.nii');
  await writeNifti(nifti, volume, { datatype: 'float32' });
  return { dir, nifti, volume };
}

async function writeSeries(src: Source, name: string, o: { drop?: number; tiltDeg?: number } = {}): Promise<string> {
  const folder = join(src.dir, name);
  python(['series', src.nifti, folder, String(o.drop ?? -1), String(o.tiltDeg ?? 0)]);
  return folder;
}

/** Checks `e` is DataInvalid whose single-line message starts with the folder. */
const refusal = (folder: string, pattern: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof DataInvalid, `expected DataInvalid, got ${String(e)}`);
  assert.ok(e.message.startsWith(`${folder}: `), e.message);
  assert.doesNotMatch(e.message, /\n/);
  assert.match(e.message, pattern);
  assert.equal(e.data.file, folder);
  return true;
};

describe('DICOM series intake through dcm2niix', () => {
  it('a series round-trips: dcm2niix output read by fedgit = nibabel = the original geometry and HU', async (t) => {
    if (!dcm2niixInstalled()) return t.skip('dcm2niix is not installed');
    requirePydicom();
    const src = await source(t, 21);
    const folder = await writeSeries(src, 'series');
    const cacheDir = join(src.dir, 'cache');

    const converted = await convertDicomSeries(folder, { cacheDir });
    assert.equal(converted.cached, false);
    assert.equal(converted.tiltCorrected, false);
    assert.equal(converted.sidecar.Modality, 'CT');
    assert.equal(converted.sidecar.ConversionSoftware, 'dcm2niix');
    assert.equal((await readdir(cacheDir)).length, 1, 'one cache entry, no work folders left');

    const ours = await readNifti(converted.niftiPath);
    const dump = JSON.parse(python(['dump', converted.niftiPath, join(src.dir, 'nibabel.f32')])) as { affine: number[]; shape: number[] };
    const theirs = new Float32Array((await readFile(join(src.dir, 'nibabel.f32'))).buffer.slice(0));
    assert.deepEqual([...ours.dims], dump.shape);
    ours.affine.forEach((a, n) => assert.ok(Math.abs(a - dump.affine[n]!) < 1e-4, `affine[${n}] ${a} vs nibabel ${dump.affine[n]}`));
    assert.equal(ours.hu.length, theirs.length);
    for (let n = 0; n < theirs.length; n++) if (ours.hu[n] !== theirs[n]) assert.fail(`voxel ${n}: ${ours.hu[n]} vs nibabel ${theirs[n]}`);

    // Every converted voxel sits on a voxel of the original (< 0.5 mm) with its HU to the rescale rounding.
    const [nx, ny, nz] = ours.dims;
    assert.equal(nx * ny * nz, src.volume.hu.length);
    const toSource = invertAffine(src.volume.affine);
    const [sx, sy] = src.volume.dims;
    let worstMm = 0, worstHu = 0;
    for (let k = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const world = applyAffine(ours.affine, i, j, k);
          const v = applyAffine(toSource, ...world).map(Math.round) as [number, number, number];
          const back = applyAffine(src.volume.affine, ...v);
          worstMm = Math.max(worstMm, Math.hypot(world[0] - back[0], world[1] - back[1], world[2] - back[2]));
          worstHu = Math.max(worstHu, Math.abs(ours.hu[(k * ny + j) * nx + i]! - src.volume.hu[(v[2] * sy + v[1]) * sx + v[0]]!));
        }
      }
    }
    assert.ok(worstMm < 0.5, `world positions differ by up to ${worstMm} mm`);
    assert.ok(worstHu <= 0.5 + 1e-3, `HU differ by up to ${worstHu}`);

    const again = await convertDicomSeries(folder, { cacheDir });
    assert.deepEqual([again.cached, again.niftiPath], [true, converted.niftiPath]);
  });

  it('a series with one slice removed is refused in one line naming the folder, and nothing is cached', async (t) => {
    if (!dcm2niixInstalled()) return t.skip('dcm2niix is not installed');
    requirePydicom();
    const src = await source(t, 22);
    const folder = await writeSeries(src, 'missing-slice', { drop: 14 });
    const cacheDir = join(src.dir, 'cache');
    let result: unknown;
    await assert.rejects(async () => { result = await convertDicomSeries(folder, { cacheDir }); },
      refusal(folder, /: 1 missing slice\(s\): a 10\.00 mm gap between IM0014\.dcm and IM0016\.dcm where the spacing is 5\.00 mm$/));
    assert.equal(result, undefined);
    assert.deepEqual(await readdir(cacheDir), [], 'no cache entry and no work folder left');
    await assert.rejects(readScan(src.dir, 'missing-slice', { cacheDir }), refusal(folder, /missing slice/));
  });

  it('gantry tilt: the tilt-corrected output is used, and it sits where the scanner put the head', async (t) => {
    if (!dcm2niixInstalled()) return t.skip('dcm2niix is not installed');
    requirePydicom();
    // Image rows tilted 15° about x (LPS), slices stepping along the table (z) 1.2 m from isocentre.
    const tilt = (15 * Math.PI) / 180, pixel = 1.9, slice = 5;
    const lps = [pixel, 0, 0, -121, 0, pixel * Math.cos(tilt), 0, -135, 0, -pixel * Math.sin(tilt), slice, -1260, 0, 0, 0, 1];
    const ras = lps.map((v, n) => (n < 8 ? -v : v));
    const src = await source(t, 23, ras);
    const folder = await writeSeries(src, 'tilted', { tiltDeg: 15 });
    const converted = await convertDicomSeries(folder, { cacheDir: join(src.dir, 'cache') });
    assert.equal(converted.tiltCorrected, true);
    const out = await readNifti(converted.niftiPath);
    const a = out.affine;
    const column = (c: number): number[] => [a[c]!, a[4 + c]!, a[8 + c]!];
    const dot = (u: number[], v: number[]): number => u[0]! * v[0]! + u[1]! * v[1]! + u[2]! * v[2]!;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]] as const) {
      assert.ok(Math.abs(dot(column(p), column(q))) < 1e-3, `columns ${p}, ${q} orthogonal after correction`);
    }
    // HU at corresponding world positions agree (a sheared, uncorrected volume is off by up to 39 mm).
    const toSource = invertAffine(src.volume.affine);
    const [sx, sy, sz] = src.volume.dims;
    const [nx, ny, nz] = out.dims;
    const pairs: [number, number][] = [];
    for (let n = 0; n < out.hu.length; n += 7) {
      const i = n % nx, j = Math.floor(n / nx) % ny, k = Math.floor(n / (nx * ny));
      const v = applyAffine(toSource, ...applyAffine(a, i, j, k)).map(Math.round) as [number, number, number];
      if (v.some((c, d) => c < 0 || c >= [sx, sy, sz][d]!)) continue;
      pairs.push([out.hu[n]!, src.volume.hu[(v[2] * sy + v[1]) * sx + v[0]]!]);
    }
    assert.ok(pairs.length > 50_000 && nz === 30, `${pairs.length} voxels compared`);
    assert.ok(correlation(pairs) > 0.95, `HU correlation ${correlation(pairs)}`);
    assert.ok((await readScan(src.dir, 'tilted', { cacheDir: join(src.dir, 'cache') })).head.brainMl > 1000);
  });

  it('a labels.csv naming NIfTI files and a DICOM series folder loads through loadCohort', async (t) => {
    if (!dcm2niixInstalled()) return t.skip('dcm2niix is not installed');
    requirePydicom();
    const src = await source(t, 24);
    const data = join(src.dir, 'data');
    await mkdir(data);
    const a = synthVolume(25, { matrix: 128, slices: 30 }), b = synthVolume(26, { matrix: 128, slices: 30 });
    await writeNifti(join(data, 'a.nii.gz'), a.volume, { datatype: 'int16', sclInter: -1024 });
    await writeNifti(join(data, 'b.nii'), b.volume, { datatype: 'float32' });
    python(['series', src.nifti, join(data, 'c'), '-1', '0']);
    const labels = (o: { labels: Uint8Array }) => o.labels;
    await writeFile(join(data, 'labels.csv'), renderLabelsCsv([
      { file: 'a.nii.gz', hemisphere: 'L', labels: labels(a) },
      { file: 'c/', hemisphere: 'R', labels: new Uint8Array(10).fill(1) },
      { file: 'b.nii', hemisphere: 'R', labels: labels(b) },
    ]));

    const cohort = await loadCohort(data, { concurrency: 2 });
    assert.deepEqual(cohort.samples.map((s) => s.id), ['a.nii.gz', 'c', 'b.nii']);
    const dicomSample = cohort.samples[1]!;
    assert.deepEqual([...dicomSample.labels], new Array(10).fill(1));
    // The converted series gives the model the input its source volume gives once stored as whole HU.
    const expected = preprocess({ ...src.volume, hu: src.volume.hu.map(Math.round) }, 'R', cohort.grid);
    // A few cells may differ: a voxel centre within ~1e-4 mm of a cell boundary can splat into the
    // neighbour cell, since DICOM stores the geometry as decimal strings.
    const differing = expected.filter((e, n) => Math.abs(e - dicomSample.input[n]!) > 1e-3).length;
    assert.ok(differing <= expected.length / 1000, `${differing} of ${expected.length} model-input cells differ`);
    assert.equal((await readdir(join(data, '.fedgit-cache', 'dicom'))).length, 1, 'converted into the default cache');
    // The cache is not a volume: the one-to-one check still passes, now from the cache.
    assert.equal((await loadCohort(data)).count, 3);

    // A second series folder without a row is named; a row naming a broken series names its folder.
    python(['series', src.nifti, join(data, 'd'), '3', '0']);
    await assert.rejects(loadCohort(data), refusal(join(data, 'd'), /volume has no row/));
    await writeFile(join(data, 'labels.csv'), (await readFile(join(data, 'labels.csv'), 'utf8')) + 'd,L,0,0,0,0,0,0,0,0,0,0\n');
    await assert.rejects(loadCohort(data), refusal(join(data, 'd'), /missing slice/));
  });
});

/** dcm2niix v1.0.20220720's `-v 1` report of a series, slices 5 mm apart along z (LPS; 4.99 mm along the oblique normal), some left out. */
function verboseLog(slices: number, o: { skip?: number[]; extra?: string[] } = {}): string {
  const lines = ["Chris Rorden's dcm2niiX version v1.0.20220720  (JP2:OpenJPEG) GCC12.2.0 x86-64 (64-bit Linux)", 'Defaults ignored'];
  const kept = Array.from({ length: slices }, (_, k) => k).filter((k) => !o.skip?.includes(k));
  lines.push(`Found ${kept.length} DICOM file(s)`);
  for (const k of kept.reverse()) {
    const z = (-54.2076 + 5 * k).toPrecision(6);
    lines.push(`   Patient Position 0020,0032 (#,@,X,Y,Z)\t1\t1514\t-122.603\t154.218\t${z}`,
      `DICOM file: /data/s/IM${String(k + 1).padStart(4, '0')}.dcm`,
      ` patient position (0020,0032)\t-122.603\t154.218\t${z}`,
      ' orient (0020,0037)\t0.997033\t-0.0637442\t-0.0431488\t-0.0650624\t-0.997434\t-0.029867',
      ` acq 2 img ${k + 1} ser 2 dim 128x128x1x1 mm 1.97083x1.97083x5 offset 1918`);
  }
  return [...lines, ...(o.extra ?? []), `Convert ${kept.length} DICOM as /cache/series_2 (128x128x${kept.length}x1)`].join('\n');
}

describe('decideConversion (pure): what dcm2niix wrote and said → accept or refuse', () => {
  const json = ['series_2.json'];
  const cases: { name: string; exitCode: number | null; log: string; outputs: string[]; expect: string | RegExp }[] = [
    { name: 'a complete series', exitCode: 0, log: verboseLog(30), outputs: [...json, 'series_2.nii'], expect: 'series_2.nii' },
    { name: 'gantry tilt: the corrected volume', exitCode: 0, log: verboseLog(30, { extra: ['Warning: Note these images have gantry tilt of 15 degrees (manufacturer ID = 2)'] }),
      outputs: [...json, 'series_2.nii', 'series_2_Tilt_1.nii'], expect: 'series_2_Tilt_1.nii' },
    { name: 'a slice missing in the middle (as observed)', exitCode: 0,
      log: verboseLog(30, { skip: [14], extra: ['Warning: Interslice distance varies in this volume (incompatible with NIfTI format).', 'Warning: Missing images? Expected 29 images, but instance number (0020,0013) ranges from 1 to 30'] }),
      outputs: [...json, 'series_2.nii', 'series_2_Eq_1.nii'], expect: /^missing-slice: 1 missing slice\(s\): a 9\.99 mm gap between IM0014\.dcm and IM0016\.dcm where the spacing is 4\.99 mm$/ },
    { name: 'two slices missing in two places, even if dcm2niix said nothing', exitCode: 0, log: verboseLog(30, { skip: [5, 20] }),
      outputs: [...json, 'series_2.nii'], expect: /^missing-slice: 2 missing slice\(s\): .* \(and 1 more gap\(s\)\)/ },
    { name: 'dcm2niix warns of missing images the positions do not show', exitCode: 0,
      log: verboseLog(30, { extra: ['Warning: Missing images? Expected 30 images, but instance number (0020,0013) ranges from 1 to 31'] }),
      outputs: [...json, 'series_2.nii'], expect: /^missing-slice: missing slice\(s\) \(dcm2niix: Warning: Missing images\?/ },
    { name: 'an equalised output alone means uneven spacing', exitCode: 0, log: verboseLog(30), outputs: [...json, 'series_2.nii', 'series_2_Eq_1.nii'],
      expect: /^irregular-spacing: irregular slice spacing \(dcm2niix: wrote series_2_Eq_1\.nii\)$/ },
    { name: 'the same position twice', exitCode: 0, log: verboseLog(30) + '\n' + verboseLog(30).split('\n').slice(3, 8).join('\n'),
      outputs: [...json, 'series_2.nii'], expect: /^irregular-spacing: irregular slice spacing: gaps from 0\.00 mm to 4\.99 mm/ },
    { name: 'two series', exitCode: 0, log: verboseLog(30), outputs: [...json, 'series_2.nii', 'series_3.json', 'series_3.nii'],
      expect: 'several-series: 2 series or volumes (series_2, series_3): a folder must hold exactly one DICOM series' },
    { name: 'no DICOM', exitCode: 2, log: 'Error: Unable to find any DICOM images in /data/x (or subfolders 0 deep)', outputs: [],
      expect: 'no-series: no DICOM series found (dcm2niix: Error: Unable to find any DICOM images in /data/x (or subfolders 0 deep))' },
    { name: 'a truncated file', exitCode: 1, log: 'Found 30 DICOM file(s)\nWarning: File not large enough to store image data: /data/x/IM0010.dcm', outputs: [],
      expect: /^conversion-failed: dcm2niix could not convert the series \(exit 1\) \(dcm2niix: Warning: File not large enough/ },
    { name: 'killed at the time limit', exitCode: null, log: '', outputs: [...json, 'series_2.nii'], expect: /^conversion-failed: dcm2niix did not finish/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = decideConversion({ exitCode: c.exitCode, log: parseDcm2niixLog(c.log), outputs: c.outputs });
      const got = d.kind === 'accept' ? d.nifti : `${d.reason}: ${d.message}`;
      if (typeof c.expect === 'string') assert.equal(got, c.expect);
      else assert.match(got, c.expect);
    });
  }

  it('reads every slice position and the notices from the report', () => {
    const log = parseDcm2niixLog(verboseLog(4, { extra: ['Warning: Interslice distance varies in this volume (incompatible with NIfTI format).'] }));
    assert.equal(log.found, 4);
    assert.match(log.version!, /v1\.0\.20220720/);
    assert.deepEqual(log.slices.map((s) => [s.file, s.position[2]]).sort(), [['/data/s/IM0001.dcm', -54.2076], ['/data/s/IM0002.dcm', -49.2076], ['/data/s/IM0003.dcm', -44.2076], ['/data/s/IM0004.dcm', -39.2076]]);
    assert.equal(log.slices[0]!.orientation.length, 6);
    assert.deepEqual(log.warnings, ['Warning: Interslice distance varies in this volume (incompatible with NIfTI format).']);
    assert.equal(sliceSpacingProblem(log.slices), undefined);
  });
});

function correlation(pairs: readonly [number, number][]): number {
  const n = pairs.length;
  let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (const [x, y] of pairs) { sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y; }
  return (n * sxy - sx * sy) / Math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy));
}
