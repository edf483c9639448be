/**
 * safetensors codec (https://github.com/huggingface/safetensors, format section):
 * u64 little-endian header length, a JSON header, then the raw tensor bytes.
 * Float32 is fedgit's wire for models; U64 carries only secure aggregation's masked
 * fixed-point updates (operator/secagg/), read and written by their own pair of functions
 * so that no F32 reader ever accepts one. Written by hand because the format
 * is 40 lines and no maintained npm package parses it without pulling in a runtime.
 * Parsing checks every size and offset: a header that lies is refused, never trusted.
 */
import os from 'node:os';
import { CheckpointCorrupt } from '../errors.js';
import type { Tensor, Tensors } from '../contracts.js';
import { escapeUntrusted } from '../text/untrusted.js';
import { duplicateJsonKey } from './json-duplicate-key.js';

export type Checkpoint = { readonly tensors: Tensors; readonly metadata: Readonly<Record<string, string>> };

/** A U64 tensor as two little-endian 32-bit words per value (low word first): the file's byte layout on a little-endian machine. */
export type WordTensor = { readonly shape: readonly number[]; readonly words: Uint32Array };
export type WordTensors = ReadonlyMap<string, WordTensor>;
export type WordCheckpoint = { readonly tensors: WordTensors; readonly metadata: Readonly<Record<string, string>> };

type Dtype = { readonly name: 'F32' | 'U64'; readonly bytes: number };
const F32: Dtype = { name: 'F32', bytes: 4 };
const U64: Dtype = { name: 'U64', bytes: 8 };

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const LITTLE_ENDIAN = os.endianness() === 'LE';

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Serialise tensors (sorted by name, so equal inputs give equal bytes). */
export function renderSafetensors(tensors: Tensors, metadata: Record<string, string> = {}): Buffer {
  return Buffer.concat(safetensorsPieces(tensors, metadata));
}

/**
 * The same file as `renderSafetensors`, as its length and header followed by views on the tensors'
 * own bytes (copies only on a big-endian machine): written piece by piece, a checkpoint never
 * needs a second copy in memory. The views share the tensors' memory: keep them unchanged until written.
 */
export function safetensorsPieces(tensors: Tensors, metadata: Record<string, string> = {}): Uint8Array[] {
  const entries = new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, count: t.data.length, bytes: asBytes(t.data) }]));
  return renderEntries(entries, F32, metadata);
}

/** Serialise U64 tensors (two 32-bit words per value, low first), sorted by name. */
export function renderWordSafetensors(tensors: WordTensors, metadata: Record<string, string> = {}): Buffer {
  return Buffer.concat(wordSafetensorsPieces(tensors, metadata));
}

/** `renderWordSafetensors` in pieces, as `safetensorsPieces`. */
export function wordSafetensorsPieces(tensors: WordTensors, metadata: Record<string, string> = {}): Uint8Array[] {
  for (const [name, t] of tensors) if (t.words.length % 2 !== 0) throw new CheckpointCorrupt(`tensor ${name}: ${t.words.length} words is not two per U64 value`, { tensor: name });
  const entries = new Map([...tensors].map(([name, t]) => [name, { shape: t.shape, count: t.words.length / 2, bytes: asBytes(t.words) }]));
  return renderEntries(entries, U64, metadata);
}

type Entry = { readonly shape: readonly number[]; readonly count: number; readonly bytes: Uint8Array };

/** The 8-byte length and the header in one buffer, then each tensor's bytes, in name order. */
function renderEntries(entries: ReadonlyMap<string, Entry>, dtype: Dtype, metadata: Record<string, string>): Uint8Array[] {
  const names = [...entries.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = sortedRecord(metadata);
  let offset = 0;
  for (const name of names) {
    const t = entries.get(name)!;
    const bytes = t.count * dtype.bytes;
    if (elementCount(t.shape) !== t.count) {
      throw new CheckpointCorrupt(`tensor ${name}: shape [${t.shape.join(', ')}] does not match ${t.count} values`, { tensor: name });
    }
    header[name] = { dtype: dtype.name, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const head = Buffer.allocUnsafe(8 + headerBytes.length);
  head.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(head, 8);
  return [head, ...names.map((name) => entries.get(name)!.bytes)];
}

/** The little-endian bytes of 32-bit values (a view on a little-endian machine, a copy otherwise). */
function asBytes(data: Float32Array | Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.allocUnsafe(data.length * 4);
  for (let i = 0; i < data.length; i++) data instanceof Float32Array ? out.writeFloatLE(data[i]!, i * 4) : out.writeUInt32LE(data[i]!, i * 4);
  return out;
}

function sortedRecord(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Parse and validate. `source` names the file or commit in error messages. The tensors may be
 * views on `bytes` (see `readFloat32LE`): do not change `bytes` while they are in use.
 */
export function parseSafetensors(bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  const { buf, dataStart, spans, metadata } = parseLayout(bytes, source, F32);
  const tensors = new Map<string, Tensor>();
  for (const s of spans) tensors.set(s.name, { shape: s.shape, data: readFloat32LE(buf, dataStart + s.begin, (s.end - s.begin) / 4) });
  return { tensors, metadata };
}

/** Parse and validate a U64 checkpoint (secure aggregation's masked updates); every tensor must be U64. */
export function parseWordSafetensors(bytes: Uint8Array, source = 'checkpoint'): WordCheckpoint {
  const { buf, dataStart, spans, metadata } = parseLayout(bytes, source, U64);
  const tensors = new Map<string, WordTensor>();
  for (const s of spans) tensors.set(s.name, { shape: s.shape, words: readUint32LE(buf, dataStart + s.begin, (s.end - s.begin) / 4) });
  return { tensors, metadata };
}

/** What a safetensors file read in pieces hands on, in file order. */
export type SafetensorsVisitor = {
  /** The tensors' shapes in header order, once the header passed every check of `parseSafetensors`; before any value. */
  readonly layout: (shapes: ReadonlyMap<string, readonly number[]>) => void;
  /** Values of tensor `name` from index `at` on: a view that is reused once the call returns. */
  readonly values: (name: string, at: number, values: Float32Array) => void;
};

/**
 * A reader of an F32 safetensors file of `fileBytes` bytes, handed the file's bytes in order in
 * pieces of any length: it makes the checks of `parseSafetensors` (a problem throws
 * CheckpointCorrupt from the call that reveals it) and hands every value to the visitor, without
 * ever holding the file. The caller makes sure exactly `fileBytes` bytes come.
 */
export function safetensorsReader(fileBytes: number, source: string, visitor: SafetensorsVisitor): (bytes: Uint8Array) => void {
  checkMinimumSize(fileBytes, source);
  let head = Buffer.alloc(8);
  let filled = 0;
  let sized = false;
  let values: ((bytes: Uint8Array) => void) | undefined;
  return (bytes) => {
    let rest = bytes;
    while (!values) {
      const n = Math.min(rest.length, head.length - filled);
      head.set(rest.subarray(0, n), filled);
      filled += n;
      rest = rest.subarray(n);
      if (filled < head.length) return;
      if (!sized) {
        head = Buffer.concat([head, Buffer.alloc(dataStartOf(head, fileBytes, source) - 8)]);
        sized = true;
        continue;
      }
      values = valueRouter(parseSpans(head.subarray(8), fileBytes - head.length, source, F32).spans, source, visitor);
    }
    values(rest);
  };
}

const SCRATCH_VALUES = 256 * 1024;

/** Hands the data's values to the visitor tensor by tensor; values split across pieces are joined first. */
function valueRouter(headerOrder: readonly Span[], source: string, visitor: SafetensorsVisitor): (bytes: Uint8Array) => void {
  visitor.layout(new Map(headerOrder.map((s) => [s.name, s.shape])));
  const spans = [...headerOrder].sort((a, b) => a.begin - b.begin);
  const scratch = new Float32Array(SCRATCH_VALUES);
  const carry = new Uint8Array(4);
  let carried = 0;
  let at = 0;
  let k = 0;
  const hand = (floats: Float32Array) => {
    for (let i = 0; i < floats.length; ) {
      while (k < spans.length && spans[k]!.end <= at) k++;
      const span = spans[k];
      if (!span) throw new CheckpointCorrupt(`${source}: more bytes than its tensors take`, { source });
      const count = Math.min(floats.length - i, (span.end - at) / 4);
      visitor.values(span.name, (at - span.begin) / 4, floats.subarray(i, i + count));
      i += count;
      at += count * 4;
    }
  };
  return (bytes) => {
    let rest = bytes;
    if (carried > 0) {
      const n = Math.min(4 - carried, rest.length);
      carry.set(rest.subarray(0, n), carried);
      carried += n;
      rest = rest.subarray(n);
      if (carried < 4) return;
      hand(floatsOf(carry, scratch));
      carried = 0;
    }
    const whole = rest.length - (rest.length % 4);
    for (let done = 0; done < whole; done += scratch.byteLength) hand(floatsOf(rest.subarray(done, Math.min(whole, done + scratch.byteLength)), scratch));
    carry.set(rest.subarray(whole));
    carried = rest.length - whole;
  };
}

/** Little-endian float32 bytes as values: a view where the platform and alignment allow, else decoded into `scratch`. */
function floatsOf(bytes: Uint8Array, scratch: Float32Array): Float32Array {
  const count = bytes.length / 4;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  const out = scratch.subarray(0, count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, bytes.length).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}

type Span = { readonly name: string; readonly shape: number[]; readonly begin: number; readonly end: number };

function parseLayout(bytes: Uint8Array, source: string, dtype: Dtype): { buf: Buffer; dataStart: number; spans: Span[]; metadata: Record<string, string> } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataStart = dataStartOf(buf, buf.length, source);
  return { buf, dataStart, ...parseSpans(buf.subarray(8, dataStart), buf.length - dataStart, source, dtype) };
}

/** Where the data starts (after the 8-byte length and the header), from the file's first bytes and its size. */
function dataStartOf(first: Buffer, fileBytes: number, source: string): number {
  checkMinimumSize(fileBytes, source);
  const headerLength = first.readBigUInt64LE(0);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, fileBytes - 8))) {
    throw new CheckpointCorrupt(`${source}: header length ${headerLength} exceeds the file (${fileBytes} bytes)`, { source });
  }
  return 8 + Number(headerLength);
}

function checkMinimumSize(fileBytes: number, source: string): void {
  if (fileBytes < 8) throw new CheckpointCorrupt(`${source}: ${fileBytes} bytes is too short for a safetensors file`, { source });
}

/** The tensors' spans in header order and the metadata, from the header's bytes, checked against the data's length. */
function parseSpans(header: Buffer, dataLength: number, source: string, dtype: Dtype): { spans: Span[]; metadata: Record<string, string> } {
  let metadata: Record<string, string> = {};
  const spans: Span[] = [];
  for (const [name, entry] of Object.entries(parseHeader(header.toString('utf8'), source))) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, source);
      continue;
    }
    spans.push({ name, ...parseEntry(name, entry, source, dataLength, dtype) });
  }
  checkCoverage(spans.map((s): [number, number, string] => [s.begin, s.end, s.name]), dataLength, source);
  return { spans, metadata };
}

function parseHeader(headerText: string, source: string): Record<string, unknown> {
  let header: unknown;
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
  return header as Record<string, unknown>;
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

function parseEntry(name: string, entry: unknown, source: string, dataLength: number, expected: Dtype) {
  const fail = (why: string) => new CheckpointCorrupt(`${source}: tensor ${escapeUntrusted(name, 80)}: ${why}`, { source, tensor: escapeUntrusted(name, 80) });
  if (typeof entry !== 'object' || entry === null) throw fail('entry is not an object');
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (dtype !== expected.name) throw fail(`dtype ${escapeUntrusted(String(JSON.stringify(dtype)), 40)} is not ${expected.name}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail('shape is not a list of non-negative integers');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw fail('data_offsets is not two non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin || end > dataLength) throw fail(`data_offsets [${begin}, ${end}] fall outside the ${dataLength} data bytes`);
  if (end - begin !== elementCount(shape as number[]) * expected.bytes) {
    throw fail(`shape [${(shape as number[]).join(', ')}] needs ${elementCount(shape as number[]) * expected.bytes} bytes, offsets give ${end - begin}`);
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

function readUint32LE(buf: Buffer, at: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(buf.subarray(at, at + count * 4));
  } else {
    for (let i = 0; i < count; i++) out[i] = buf.readUInt32LE(at + i * 4);
  }
  return out;
}
