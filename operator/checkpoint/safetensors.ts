/**
 * safetensors codec (https://github.com/huggingface/safetensors, format section):
 * u64 little-endian header length, a JSON header, then the raw tensor bytes.
 * Only float32 is used on fedgit's wire. Written by hand because the format
 * is 40 lines and no maintained npm package parses it without pulling in a runtime.
 * Parsing checks every size and offset: a header that lies is refused, never trusted.
 */
import os from 'node:os';
import { CheckpointCorrupt } from '../errors.js';
import type { Tensor, Tensors } from '../contracts.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { duplicateJsonKey } from './json-duplicate-key.js';

export type Checkpoint = { readonly tensors: Tensors; readonly metadata: Readonly<Record<string, string>> };

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const LITTLE_ENDIAN = os.endianness() === 'LE';

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Serialise tensors (sorted by name, so equal inputs give equal bytes). */
export function renderSafetensors(tensors: Tensors, metadata: Record<string, string> = {}): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = sortedRecord(metadata);
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = t.data.length * 4;
    if (elementCount(t.shape) !== t.data.length) {
      throw new CheckpointCorrupt(`tensor ${name}: shape [${t.shape.join(', ')}] does not match ${t.data.length} values`, { tensor: name });
    }
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.allocUnsafe(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors.get(name)!.data;
    writeFloat32LE(data, out, at);
    at += data.length * 4;
  }
  return out;
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function writeFloat32LE(data: Float32Array, out: Buffer, at: number): void {
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
  } else {
    for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i]!, at + i * 4);
  }
}

/**
 * Parse and validate. `source` names the file or commit in error messages. The tensors may be
 * views on `bytes` (see `readFloat32LE`): do not change `bytes` while they are in use.
 */
export function parseSafetensors(bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8) throw new CheckpointCorrupt(`${source}: ${buf.length} bytes is too short for a safetensors file`, { source });
  const headerLength = buf.readBigUInt64LE(0);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, buf.length - 8))) {
    throw new CheckpointCorrupt(`${source}: header length ${headerLength} exceeds the file (${buf.length} bytes)`, { source });
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  const headerText = buf.subarray(8, dataStart).toString('utf8');
  try {
    header = JSON.parse(headerText);
  } catch (cause) {
    throw new CheckpointCorrupt(`${source}: header is not valid JSON`, { source }, { cause });
  }
  const duplicate = duplicateJsonKey(headerText);
  if (duplicate !== undefined) throw new CheckpointCorrupt(`${source}: header has the key ${escapeUntrusted(JSON.stringify(duplicate), 80)} twice`, { source });
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointCorrupt(`${source}: header is not a JSON object`, { source });
  }
  const dataLength = buf.length - dataStart;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, source);
      continue;
    }
    const { shape, begin, end } = parseEntry(name, entry, source, dataLength);
    spans.push([begin, end, name]);
    tensors.set(name, { shape, data: readFloat32LE(buf, dataStart + begin, (end - begin) / 4) });
  }
  checkCoverage(spans, dataLength, source);
  return { tensors, metadata };
}

function parseMetadata(entry: unknown, source: string): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new CheckpointCorrupt(`${source}: __metadata__ is not an object`, { source });
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw new CheckpointCorrupt(`${source}: __metadata__.${escapeUntrusted(k, 80)} is not a string`, { source });
    out[k] = v;
  }
  return out;
}

function parseEntry(name: string, entry: unknown, source: string, dataLength: number) {
  const fail = (why: string) => new CheckpointCorrupt(`${source}: tensor ${escapeUntrusted(name, 80)}: ${why}`, { source, tensor: escapeUntrusted(name, 80) });
  if (typeof entry !== 'object' || entry === null) throw fail('entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (dtype !== 'F32') throw fail(`dtype ${escapeUntrusted(String(JSON.stringify(dtype)), 40)} is not F32`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail('shape is not a list of non-negative integers');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw fail('data_offsets is not two non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin || end > dataLength) throw fail(`data_offsets [${begin}, ${end}] fall outside the ${dataLength} data bytes`);
  if (end - begin !== elementCount(shape as number[]) * 4) {
    throw fail(`shape [${(shape as number[]).join(', ')}] needs ${elementCount(shape as number[]) * 4} bytes, offsets give ${end - begin}`);
  }
  return { shape: shape as number[], begin, end };
}

function checkCoverage(spans: Array<[number, number, string]>, dataLength: number, source: string): void {
  spans.sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== at) throw new CheckpointCorrupt(`${source}: tensor ${escapeUntrusted(name, 80)} starts at byte ${begin}, expected ${at} (overlap or gap)`, { source, tensor: escapeUntrusted(name, 80) });
    at = end;
  }
  if (at !== dataLength) throw new CheckpointCorrupt(`${source}: ${dataLength - at} trailing bytes after the last tensor`, { source });
}

/**
 * A view on the file's bytes where the platform is little-endian and the data 4-byte aligned (as
 * fedgit writes it), so a checkpoint costs its size once in memory; a copy otherwise.
 */
function readFloat32LE(buf: Buffer, at: number, count: number): Float32Array {
  if (LITTLE_ENDIAN && (buf.byteOffset + at) % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset + at, count);
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(buf.subarray(at, at + count * 4));
  } else {
    for (let i = 0; i < count; i++) out[i] = buf.readFloatLE(at + i * 4);
  }
  return out;
}
