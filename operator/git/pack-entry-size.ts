/**
 * The size of a packed object, read from the pack's index and the entry's header without
 * inflating the object, so that a limit can be applied before anything is allocated
 * (isomorphic-git inflates a packed object whole). Formats: gitformat-pack(5), index v2.
 */
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

const IDX_MAGIC = 0xff744f63;
const OFS_DELTA = 6;
const REF_DELTA = 7;

/** Where `oid` starts in which pack, or undefined when no v2 index lists it. */
async function findInPacks(gitdir: string, oid: string): Promise<{ pack: string; offset: number } | undefined> {
  const dir = path.join(gitdir, 'objects', 'pack');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.idx'));
  const wanted = Buffer.from(oid, 'hex');
  for (const name of names) {
    const idx = await readFile(path.join(dir, name));
    if (idx.length < 8 + 1024 || idx.readUInt32BE(0) !== IDX_MAGIC || idx.readUInt32BE(4) !== 2) continue;
    const fanout = (i: number) => (i < 0 ? 0 : idx.readUInt32BE(8 + 4 * i));
    const count = fanout(255);
    const namesAt = 8 + 1024;
    let lo = fanout(wanted[0]! - 1);
    let hi = fanout(wanted[0]!);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = Buffer.compare(idx.subarray(namesAt + 20 * mid, namesAt + 20 * mid + 20), wanted);
      if (cmp === 0) {
        const offsetsAt = namesAt + 24 * count;
        const small = idx.readUInt32BE(offsetsAt + 4 * mid);
        const offset = small & 0x80000000 ? Number(idx.readBigUInt64BE(offsetsAt + 4 * count + 8 * (small & 0x7fffffff))) : small;
        return { pack: path.join(dir, name.replace(/\.idx$/, '.pack')), offset };
      }
      if (cmp < 0) lo = mid + 1;
      else hi = mid;
    }
  }
  return undefined;
}

/** Little-endian base-128 varint (pack entry sizes, delta sizes), from `at`. */
function varint(bytes: Buffer, at: number, firstShift = 0, firstValue = 0): { value: number; next: number } {
  let value = firstValue;
  let shift = firstShift;
  let i = at;
  for (;;) {
    const byte = bytes[i++];
    if (byte === undefined) throw new RangeError('truncated size');
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return { value, next: i };
  }
}

/**
 * The number of bytes `oid` has once inflated (for a delta: the size of the object it
 * rebuilds, from the delta's own header), or undefined when it is not in a pack.
 */
export async function packedObjectSize(gitdir: string, oid: string): Promise<number | undefined> {
  const where = await findInPacks(gitdir, oid);
  if (!where) return undefined;
  const handle = await open(where.pack, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, head.length, where.offset);
    const bytes = head.subarray(0, bytesRead);
    const type = (bytes[0]! >> 4) & 0x07;
    const size = bytes[0]! & 0x80 ? varint(bytes, 1, 4, bytes[0]! & 0x0f) : { value: bytes[0]! & 0x0f, next: 1 };
    if (type !== OFS_DELTA && type !== REF_DELTA) return size.value;
    let dataAt = size.next;
    if (type === REF_DELTA) dataAt += 20;
    else while (bytes[dataAt++]! & 0x80);
    // The delta starts with the base's size and the result's size; inflate just enough to read them.
    const start = zlib.inflateSync(bytes.subarray(dataAt), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const base = varint(start, 0);
    return varint(start, base.next).value;
  } finally {
    await handle.close();
  }
}
