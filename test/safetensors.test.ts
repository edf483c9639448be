import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSafetensors, renderSafetensors } from '../operator/checkpoint/safetensors.js';
import { CheckpointCorrupt } from '../operator/errors.js';
import type { Tensors } from '../operator/contracts.js';

const sample: Tensors = new Map([
  ['b', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
  ['a', { shape: [], data: Float32Array.of(Math.PI) }],
  ['empty', { shape: [0, 4], data: new Float32Array(0) }],
]);

test('round trip keeps names, shapes, values and metadata; bytes are deterministic', () => {
  const bytes = renderSafetensors(sample, { 'fedgit.round': '3' });
  const back = parseSafetensors(bytes);
  assert.deepEqual([...back.tensors.keys()].sort(), ['a', 'b', 'empty']);
  assert.deepEqual(back.tensors.get('b'), { shape: [2, 3], data: sample.get('b')!.data });
  assert.equal(back.metadata['fedgit.round'], '3');
  assert.equal((8 + Number(bytes.readBigUInt64LE(0))) % 8, 0, 'header padded to 8 bytes');
  assert.ok(renderSafetensors(new Map([...sample].reverse()), { 'fedgit.round': '3' }).equals(bytes));
});

function withHeader(header: unknown, dataBytes = 24): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length));
  json.copy(out, 8);
  return out;
}

test('a header that lies is refused with the reason', () => {
  const cases: Array<[Buffer, RegExp]> = [
    [Buffer.alloc(4), /too short/],
    [(() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(1000n); return b; })(), /header length 1000 exceeds the file/],
    [withHeader({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 24), /16 trailing bytes/],
    [withHeader({ w: { dtype: 'F32', shape: [10], data_offsets: [0, 24] } }), /needs 40 bytes, offsets give 24/],
    [withHeader({ w: { dtype: 'F32', shape: [6], data_offsets: [0, 240] } }), /fall outside the 24 data bytes/],
    [withHeader({ w: { dtype: 'F16', shape: [12], data_offsets: [0, 24] } }), /dtype "F16" is not F32/],
    [withHeader({ w: { dtype: 'F32', shape: [-6], data_offsets: [0, 24] } }), /shape is not a list of non-negative integers/],
    [withHeader({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, v: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }), /overlap or gap/],
    [withHeader([1, 2]), /not a JSON object/],
  ];
  for (const [bytes, reason] of cases) {
    assert.throws(() => parseSafetensors(bytes, 'x.safetensors'), (e: unknown) => e instanceof CheckpointCorrupt && reason.test(e.message) && e.message.startsWith('x.safetensors'), String(reason));
  }
});
