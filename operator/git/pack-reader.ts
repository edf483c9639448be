/**
 * Reads a pack (git's format v2) as a server sends it for a fetch: every object's type and
 * content, deltas resolved (against earlier entries or, for a thin pack, objects the repository
 * holds), the trailer checked. Inflated by node's zlib; isomorphic-git's fetch indexes a pack by
 * inflating every object with pako in JavaScript.
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { objectId, type GitObject, type ObjectType } from './objects.js';

const TYPES: Record<number, ObjectType> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };
const OFS_DELTA = 6;
const REF_DELTA = 7;

export class PackCorrupt extends Error {}

type Entry = { readonly offset: number; readonly type: number; readonly data: Buffer; readonly base?: number | string };

/** The objects of `pack`, in pack order; `baseOf` supplies a delta's base that is not in the pack. */
export async function readPack(pack: Buffer, baseOf: (oid: string) => Promise<GitObject>): Promise<GitObject[]> {
  if (pack.length < 32 || pack.toString('latin1', 0, 4) !== 'PACK') throw new PackCorrupt('not a pack');
  const version = pack.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new PackCorrupt(`pack version ${version}`);
  const trailer = pack.subarray(pack.length - 20);
  if (!createHash('sha1').update(pack.subarray(0, pack.length - 20)).digest().equals(trailer)) throw new PackCorrupt('the pack\'s checksum does not match');
  const count = pack.readUInt32BE(8);
  const entries: Entry[] = [];
  let at = 12;
  for (let i = 0; i < count; i++) {
    const entry = readEntry(pack, at);
    entries.push(entry.entry);
    at = entry.next;
  }
  if (at !== pack.length - 20) throw new PackCorrupt('the pack has bytes after its last object');
  return resolve(entries, baseOf);
}

function readEntry(pack: Buffer, offset: number): { entry: Entry; next: number } {
  let at = offset;
  let byte = pack[at++]!;
  const type = (byte >> 4) & 7;
  let size = byte & 15;
  for (let shift = 4; byte & 0x80; shift += 7) {
    byte = pack[at++]!;
    size += (byte & 0x7f) * 2 ** shift;
  }
  let base: number | string | undefined;
  if (type === OFS_DELTA) {
    byte = pack[at++]!;
    let distance = byte & 0x7f;
    while (byte & 0x80) {
      byte = pack[at++]!;
      distance = (distance + 1) * 128 + (byte & 0x7f);
    }
    base = offset - distance;
    if (base < 12) throw new PackCorrupt(`a delta at ${offset} names a base before the pack`);
  } else if (type === REF_DELTA) {
    base = pack.toString('hex', at, at + 20);
    at += 20;
  } else if (!TYPES[type]) {
    throw new PackCorrupt(`an object of unknown type ${type} at ${offset}`);
  }
  if (at >= pack.length - 20) throw new PackCorrupt(`the pack ends inside the object at ${offset}`);
  let inflated: { buffer: Buffer; engine: zlib.Inflate };
  try {
    inflated = zlib.inflateSync(pack.subarray(at, pack.length - 20), { info: true, maxOutputLength: Math.max(size, 1) }) as unknown as { buffer: Buffer; engine: zlib.Inflate };
  } catch (e) {
    throw new PackCorrupt(`the object at ${offset} does not inflate: ${(e as Error).message}`);
  }
  if (inflated.buffer.length !== size) throw new PackCorrupt(`the object at ${offset} inflates to ${inflated.buffer.length} bytes, not the ${size} announced`);
  return { entry: { offset, type, data: inflated.buffer, ...(base !== undefined ? { base } : {}) }, next: at + inflated.engine.bytesWritten };
}

/**
 * Resolves every entry (a delta's base may come later in the pack, or be outside it). Objects are
 * hashed here only when a delta names its base by id: whoever stores them hashes them anyway.
 */
async function resolve(entries: readonly Entry[], baseOf: (oid: string) => Promise<GitObject>): Promise<GitObject[]> {
  const byOffset = new Map<number, GitObject>();
  let byId: Map<string, GitObject> | undefined;
  const ids = () => (byId ??= new Map([...byOffset.values()].map((o) => [objectId(o.type, o.content), o])));
  const add = (offset: number, object: GitObject) => {
    byOffset.set(offset, object);
    byId?.set(objectId(object.type, object.content), object);
  };
  let pending = entries.filter((e) => {
    if (e.base !== undefined) return true;
    add(e.offset, { type: TYPES[e.type]!, content: e.data });
    return false;
  });
  while (pending.length > 0) {
    const waiting: Entry[] = [];
    for (const entry of pending) {
      const base = typeof entry.base === 'number' ? byOffset.get(entry.base) : ids().get(entry.base!);
      if (base) add(entry.offset, { type: base.type, content: applyDelta(base.content, entry.data) });
      else waiting.push(entry);
    }
    if (waiting.length === pending.length) {
      // Nothing resolved in this pass: the rest need bases from outside the pack (a thin pack).
      const outside = waiting.find((e) => typeof e.base === 'string');
      if (!outside) throw new PackCorrupt(`a delta at ${waiting[0]!.offset} has no base in the pack`);
      ids().set(outside.base as string, await baseOf(outside.base as string));
    }
    pending = waiting;
  }
  return entries.map((e) => byOffset.get(e.offset)!);
}

/** `base` with `delta` (git's copy/insert instructions) applied. */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  let at = 0;
  const varint = () => {
    let value = 0;
    let byte;
    let shift = 0;
    do {
      byte = delta[at++];
      if (byte === undefined) throw new PackCorrupt('a delta ends inside its header');
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return value;
  };
  if (varint() !== base.length) throw new PackCorrupt('a delta was made against another base');
  const out = Buffer.allocUnsafe(varint());
  let written = 0;
  while (at < delta.length) {
    const op = delta[at++]!;
    if (op & 0x80) {
      let offset = 0;
      let size = 0;
      for (let bit = 0; bit < 4; bit++) if (op & (1 << bit)) offset += delta[at++]! * 2 ** (8 * bit);
      for (let bit = 0; bit < 3; bit++) if (op & (1 << (4 + bit))) size += delta[at++]! * 2 ** (8 * bit);
      if (size === 0) size = 0x10000;
      if (offset + size > base.length || written + size > out.length) throw new PackCorrupt('a delta copies from outside its base');
      written += base.copy(out, written, offset, offset + size);
    } else if (op > 0) {
      if (at + op > delta.length || written + op > out.length) throw new PackCorrupt('a delta inserts past its end');
      written += delta.copy(out, written, at, at + op);
      at += op;
    } else {
      throw new PackCorrupt('a delta uses the reserved instruction 0');
    }
  }
  if (written !== out.length) throw new PackCorrupt('a delta does not fill the object it announces');
  return out;
}
