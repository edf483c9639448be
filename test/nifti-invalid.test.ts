import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { DataInvalid } from '../operator/errors.js';
import { readNifti } from '../edge-app/nifti/read-nifti.js';
import { renderNifti } from '../edge-app/nifti/render-nifti.js';

/** A valid 4×3×2 int16 file to break in one way per case. */
function valid(): Uint8Array {
  return renderNifti(
    { dims: [4, 3, 2], hu: new Float32Array(24).fill(7), affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], description: '' },
    { datatype: 'int16' },
  );
}
const patch = (edit: (view: DataView, bytes: Uint8Array) => void) => (): Uint8Array => {
  const bytes = valid();
  edit(new DataView(bytes.buffer), bytes);
  return bytes;
};

const CASES: { name: string; bytes: () => Uint8Array; reason: string; mentions?: RegExp }[] = [
  { name: 'truncated.nii', bytes: () => valid().subarray(0, 352 + 40), reason: 'truncated', mentions: /truncated/ },
  { name: 'truncated.nii.gz', bytes: () => gzipSync(valid().subarray(0, 360)), reason: 'truncated' },
  { name: 'header-only-part.nii', bytes: () => valid().subarray(0, 200), reason: 'truncated' },
  { name: 'corrupt.nii.gz', bytes: () => { const z = gzipSync(valid()); z.fill(0x55, 20, 40); return z; }, reason: 'gzip', mentions: /gzip/ },
  { name: 'cut.nii.gz', bytes: () => gzipSync(valid()).subarray(0, 30), reason: 'gzip' },
  { name: 'magic.nii', bytes: patch((_, b) => b.set([0x6e, 0x69, 0x31, 0], 344)), reason: 'magic', mentions: /\.hdr\/\.img/ },
  { name: 'nomagic.nii', bytes: patch((_, b) => b.set([0x41, 0x42, 0x43, 0], 344)), reason: 'magic' },
  { name: 'sizeof.nii', bytes: patch((v) => v.setInt32(0, 1234, true)), reason: 'sizeof_hdr' },
  { name: 'nifti2.nii', bytes: patch((v) => v.setInt32(0, 540, true)), reason: 'nifti2' },
  { name: 'zero-dim.nii', bytes: patch((v) => v.setInt16(44, 0, true)), reason: 'dims' },
  { name: 'negative-dim.nii', bytes: patch((v) => v.setInt16(42, -4, true)), reason: 'dims' },
  { name: 'rank.nii', bytes: patch((v) => v.setInt16(40, 9, true)), reason: 'dims' },
  { name: 'four-d.nii', bytes: patch((v) => { v.setInt16(40, 4, true); v.setInt16(48, 2, true); }), reason: 'dims', mentions: /3-D/ },
  { name: 'lying-dims.nii', bytes: patch((v) => v.setInt16(46, 500, true)), reason: 'truncated' },
  { name: 'huge-dims.nii', bytes: patch((v) => { v.setInt16(42, 32767, true); v.setInt16(44, 32767, true); v.setInt16(46, 32767, true); }), reason: 'dims' },
  { name: 'rgb.nii', bytes: patch((v) => { v.setInt16(70, 128, true); v.setInt16(72, 24, true); }), reason: 'datatype', mentions: /datatype code 128/ },
  { name: 'bitpix.nii', bytes: patch((v) => v.setInt16(72, 32, true)), reason: 'bitpix' },
  { name: 'vox-offset.nii', bytes: patch((v) => v.setFloat32(108, 100, true)), reason: 'vox_offset' },
  { name: 'singular.nii', bytes: patch((v) => { for (let n = 0; n < 12; n++) v.setFloat32(280 + 4 * n, 0, true); }), reason: 'affine' },
  { name: 'no-orientation.nii', bytes: patch((v) => { v.setInt16(252, 0, true); v.setInt16(254, 0, true); }), reason: 'orientation', mentions: /no orientation: sform_code and qform_code are both 0.*left and right are undefined/ },
];

describe('readNifti refuses broken files with DataInvalid naming the file', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'fedgit-nifti-bad-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  for (const c of CASES) {
    it(c.name, async () => {
      const path = join(dir, c.name);
      await writeFile(path, c.bytes());
      await assert.rejects(readNifti(path), (e: unknown) => {
        assert.ok(e instanceof DataInvalid, `expected DataInvalid, got ${String(e)}`);
        assert.equal(e.data.file, path);
        assert.equal(e.data.reason, c.reason, e.message);
        assert.ok(e.message.includes(path), e.message);
        if (c.mentions) assert.match(e.message, c.mentions);
        return true;
      });
    });
  }

  it('the valid base file reads', async () => {
    const path = join(dir, 'ok.nii');
    await writeFile(path, valid());
    assert.equal((await readNifti(path)).hu.length, 24);
  });
});
