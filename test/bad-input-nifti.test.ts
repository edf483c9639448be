/** NIfTI files whose header lies about their dimensions, offsets or spacing are refused with DataInvalid naming the file, never read past their end. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { tempDir } from './helpers/temp.js';
import { Tally } from './helpers/chaos.js';
import { DataInvalid } from '../operator/errors.js';
import { readNifti } from '../edge-app/nifti/read-nifti.js';
import { renderNifti } from '../edge-app/nifti/render-nifti.js';

const valid = () => renderNifti({ dims: [4, 3, 2], hu: new Float32Array(24).fill(30), affine: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], description: '' }, { datatype: 'int16' });
const edit = (f: (v: DataView) => void) => () => { const b = valid(); f(new DataView(b.buffer, b.byteOffset, b.byteLength)); return b; };

const CASES: Array<[string, () => Uint8Array, RegExp]> = [
  ['dims claim 512×512×36 in a 400-byte file', edit((v) => { v.setInt16(42, 512, true); v.setInt16(44, 512, true); v.setInt16(46, 36, true); }), /truncated/],
  ['dims 32767³ (35 TB of voxels)', edit((v) => { v.setInt16(42, 32767, true); v.setInt16(44, 32767, true); v.setInt16(46, 32767, true); }), /implausibly large/],
  ['dims 32767×32767×1 just under the voxel cap', edit((v) => { v.setInt16(42, 32767, true); v.setInt16(44, 32767, true); v.setInt16(46, 1, true); }), /truncated/],
  ['negative dim', edit((v) => v.setInt16(44, -3, true)), /not positive/],
  ['dim[0] = 0', edit((v) => v.setInt16(40, 0, true)), /dim\[0\]/],
  ['vox_offset beyond the file', edit((v) => v.setFloat32(108, 1e9, true)), /truncated|vox_offset/],
  ['vox_offset NaN', edit((v) => v.setFloat32(108, NaN, true)), /vox_offset/],
  ['vox_offset inside the header', edit((v) => v.setFloat32(108, 10, true)), /vox_offset/],
  ['bitpix lying about the datatype', edit((v) => v.setInt16(72, 64, true)), /bitpix/],
  ['pixdim NaN with no qform/sform', edit((v) => { v.setInt16(252, 0, true); v.setInt16(254, 0, true); v.setFloat32(80, NaN, true); }), /affine/],
  ['sizeof_hdr lies', edit((v) => v.setInt32(0, 1 << 30, true)), /sizeof_hdr/],
  ['gzip that announces more than it holds', () => gzipSync(valid()).subarray(0, 40), /gzip/],
];

test(`${CASES.length} NIfTI headers that lie are refused with DataInvalid naming the file`, async (t) => {
  const dir = await tempDir(t, 'fedgit-bad-nifti-');
  const tally = new Tally();
  for (const [i, [what, bytes, reason]] of CASES.entries()) {
    await t.test(what, async () => {
      const file = path.join(dir, `lying-${i}.nii${what.startsWith('gzip') ? '.gz' : ''}`);
      await writeFile(file, bytes());
      await assert.rejects(readNifti(file), (e: unknown) => {
        assert.ok(e instanceof DataInvalid, `expected DataInvalid, got ${String(e)}`);
        assert.ok(e.message.includes(file), `the message names the file: ${e.message}`);
        assert.match(e.message, reason);
        return true;
      });
      tally.add('lying NIfTI headers tried');
    });
  }
  console.log(`bad-input-nifti: ${tally.get('lying NIfTI headers tried')} lying NIfTI headers tried, all refused with DataInvalid naming the file`);
});
