import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataInvalid } from '../operator/errors.js';
import { parseLabelsCsv, renderLabelsCsv } from '../edge-app/cohort/labels-csv.js';
import { loadCohort } from '../edge-app/cohort/load-cohort.js';
import { synthCohort } from '../edge-app/cohort/synth-cohort.js';

const HEADER = 'file,hemisphere,C,L,IC,I,M1,M2,M3,M4,M5,M6';

const invalid = (pattern: RegExp, data: Record<string, unknown>) => (e: unknown): boolean => {
  assert.ok(e instanceof DataInvalid, `expected DataInvalid, got ${String(e)}`);
  assert.match(e.message, pattern);
  for (const [k, v] of Object.entries(data)) assert.deepEqual(e.data[k], v, `data.${k}`);
  return true;
};

describe('labels CSV', () => {
  it('parses and renders round trip (CRLF, spaces, column order, extra columns)', () => {
    const text = `M6,M5,M4,M3,M2,M1,I,IC,L,C,hemisphere,file,note\r\n0,0,0,0,0,1,0,0,0,1, R ,a.nii.gz,x\r\n\r\n1,1,1,1,1,1,1,1,1,1,L,b.nii,\r\n`;
    const rows = parseLabelsCsv(text, 'l.csv');
    assert.deepEqual(rows.map((r) => [r.file, r.hemisphere, [...r.labels].join(''), r.line]), [
      ['a.nii.gz', 'R', '1000100000', 2],
      ['b.nii', 'L', '1111111111', 4],
    ]);
    const rendered = renderLabelsCsv(rows);
    assert.equal(rendered, `${HEADER}\na.nii.gz,R,1,0,0,0,1,0,0,0,0,0\nb.nii,L,1,1,1,1,1,1,1,1,1,1\n`);
    assert.deepEqual(parseLabelsCsv(rendered, 'again.csv').map((r) => [...r.labels]), rows.map((r) => [...r.labels]));
  });

  const cases: [string, string, RegExp, Record<string, unknown>][] = [
    ['missing column', 'file,hemisphere,C,L,IC,I,M1,M2,M3,M4,M5\na,L,0,0,0,0,0,0,0,0,0', /missing column\(s\) M6/, { file: 'l.csv', line: 1 }],
    ['bad hemisphere', `${HEADER}\na,X,0,0,0,0,0,0,0,0,0,0`, /hemisphere "X"/, { line: 2, field: 'hemisphere' }],
    ['non 0/1 label', `${HEADER}\na,L,0,0,0,0,0,0,2,0,0,0`, /M3 = "2"/, { line: 2, field: 'M3' }],
    ['empty label', `${HEADER}\na,L,0,0,0,0,0,0,,0,0,0`, /M3 = ""/, { line: 2, field: 'M3' }],
    ['duplicate row', `${HEADER}\na,L,0,0,0,0,0,0,0,0,0,0\nb,L,0,0,0,0,0,0,0,0,0,0\na,R,0,0,0,0,0,0,0,0,0,0`, /duplicate row for a \(first on line 2\)/, { line: 4 }],
    ['short row', `${HEADER}\na,L,0,0`, /4 cells/, { line: 2 }],
    ['empty file', '\n\n', /empty labels CSV/, { file: 'l.csv' }],
  ];
  for (const [name, text, pattern, data] of cases) {
    it(`refuses: ${name}`, () => assert.throws(() => parseLabelsCsv(text, 'l.csv'), invalid(pattern, { file: 'l.csv', ...data })));
  }
});

describe('loadCohort', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedgit-cohort-'));
    await synthCohort({ outDir: dir, count: 4, seed: 5, matrix: 64, slices: 28 });
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('reads every labelled volume into model inputs and reports progress', async () => {
    const progress: number[] = [];
    const cohort = await loadCohort(dir, { concurrency: 2, onProgress: (done, total) => { assert.equal(total, 4); progress.push(done); } });
    assert.equal(cohort.count, 4);
    assert.deepEqual(progress, [1, 2, 3, 4]);
    const rows = parseLabelsCsv(renderLabelsCsv(cohort.samples.map((s) => ({ file: s.id, hemisphere: s.hemisphere, labels: s.labels }))), 'x');
    assert.deepEqual(rows.map((r) => r.file), ['synth-0000.nii.gz', 'synth-0001.nii.gz', 'synth-0002.nii.gz', 'synth-0003.nii.gz']);
    for (const s of cohort.samples) {
      assert.equal(s.input.length, 16 * 48 * 24 * 2);
      // channel 1 is the symptomatic side in [-1, 1]; channel 0 the difference 4·(s − c) in [-8, 8] (MODEL.md step 6)
      assert.ok(s.input.every((v, i) => (i % 2 === 1 ? v >= -1 && v <= 1 : v >= -8 && v <= 8)));
      assert.equal(s.labels.length, 10);
    }
  });

  it('honours a custom grid', async () => {
    const cohort = await loadCohort(dir, { grid: { depth: 8, height: 16, width: 16 } });
    assert.equal(cohort.samples[0]!.input.length, 8 * 16 * 8 * 2);
  });

  it('refuses a CSV row without a volume, naming the CSV line', async () => {
    const csv = join(dir, 'extra.csv');
    await writeFile(csv, `${HEADER}\nsynth-0000.nii.gz,L,0,0,0,0,0,0,0,0,0,0\nghost.nii.gz,R,0,0,0,0,0,0,0,0,0,0\n`);
    await assert.rejects(loadCohort(dir, { csv }), invalid(/extra\.csv:3: no volume ghost\.nii\.gz/, { file: csv, line: 3 }));
  });

  it('refuses a volume without a row, naming the volume', async () => {
    const csv = join(dir, 'partial.csv');
    await writeFile(csv, `${HEADER}\nsynth-0000.nii.gz,L,0,0,0,0,0,0,0,0,0,0\nsynth-0001.nii.gz,L,0,0,0,0,0,0,0,0,0,0\nsynth-0002.nii.gz,L,0,0,0,0,0,0,0,0,0,0\n`);
    await assert.rejects(loadCohort(dir, { csv }), invalid(/synth-0003\.nii\.gz: volume has no row/, { file: join(dir, 'synth-0003.nii.gz') }));
  });

  it('refuses a missing CSV and passes on unreadable volumes as DataInvalid naming the file', async () => {
    await assert.rejects(loadCohort(dir, { csv: join(dir, 'nope.csv') }), invalid(/cannot read labels CSV/, { file: join(dir, 'nope.csv') }));
    const broken = await mkdtemp(join(tmpdir(), 'fedgit-cohort-broken-'));
    try {
      await writeFile(join(broken, 'bad.nii'), 'not a nifti file at all');
      await writeFile(join(broken, 'labels.csv'), `${HEADER}\nbad.nii,L,0,0,0,0,0,0,0,0,0,0\n`);
      await assert.rejects(loadCohort(broken), invalid(/bad\.nii/, { file: join(broken, 'bad.nii') }));
      await unlink(join(broken, 'bad.nii'));
    } finally {
      await rm(broken, { recursive: true, force: true });
    }
  });
});
