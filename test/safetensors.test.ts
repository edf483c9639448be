import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseSafetensors, renderSafetensors, safetensorsReader } from '../operator/checkpoint/safetensors.js';
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

const LYING: Array<[Buffer, RegExp]> = [
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

test('a header that lies is refused with the reason', () => {
  for (const [bytes, reason] of LYING) {
    assert.throws(() => parseSafetensors(bytes, 'x.safetensors'), (e: unknown) => e instanceof CheckpointCorrupt && reason.test(e.message) && e.message.startsWith('x.safetensors'), String(reason));
  }
});

/** Feeds `bytes` to a reader `size` bytes at a time; the shapes it announced and every tensor's values, put together. */
function readInPieces(bytes: Buffer, size: number): { shapes: Array<[string, readonly number[]]>; values: Map<string, number[]> } {
  const shapes: Array<[string, readonly number[]]> = [];
  const values = new Map<string, number[]>();
  const take = safetensorsReader(bytes.length, 'x.safetensors', {
    layout: (found) => shapes.push(...found),
    values: (name, at, chunk) => {
      const list = values.get(name) ?? [];
      assert.equal(at, list.length, `${name}: values arrive in order, none skipped`);
      values.set(name, [...list, ...chunk]);
    },
  });
  for (let at = 0; at < bytes.length; at += size) take(bytes.subarray(at, at + size));
  return { shapes, values };
}

test('read in pieces of any size, aligned or not, a file gives the shapes and values parseSafetensors gives', () => {
  const tensors: Tensors = new Map([...sample, ['noise', { shape: [1001], data: new Float32Array(randomBytes(4004).buffer) }]]);
  const bytes = renderSafetensors(tensors, { 'fedgit.round': '3' });
  const parsed = parseSafetensors(bytes).tensors;
  const expected = {
    shapes: [...parsed].map(([name, t]): [string, readonly number[]] => [name, t.shape]),
    values: new Map([...parsed].filter(([, t]) => t.data.length > 0).map(([name, t]) => [name, [...t.data]])),
  };
  const shifted = Buffer.alloc(bytes.length + 1).fill(7);
  bytes.copy(shifted, 1);
  for (const size of [1, 3, 5, 8, 4097, bytes.length]) {
    assert.deepEqual(readInPieces(bytes, size), expected, `pieces of ${size} bytes`);
    assert.deepEqual(readInPieces(shifted.subarray(1), size), expected, `pieces of ${size} bytes, not 4-byte aligned`);
  }
});

test('read in pieces, a header that lies throws what parseSafetensors throws', () => {
  for (const [bytes, reason] of LYING) {
    const expected = (() => {
      try {
        parseSafetensors(bytes, 'x.safetensors');
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('parseSafetensors accepted it');
    })();
    assert.throws(() => readInPieces(bytes, 3), (e: unknown) => e instanceof CheckpointCorrupt && e.message === expected, String(reason));
  }
});
