/**
 * Git LFS pointer files (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md): what a
 * commit holds in place of a large file. fedgit writes exactly the canonical three lines and
 * reads them strictly — a pointer whose oid or size is malformed is refused with the reason,
 * never guessed at.
 */
import { CheckpointCorrupt } from '../errors.js';
import { escapeUntrusted } from '../text/untrusted.js';

export type LfsPointer = { readonly oid: string; readonly size: number };

export const LFS_SPEC = 'https://git-lfs.github.com/spec/v1';
/** The spec's bound: a pointer file is under 1024 bytes; anything longer is a real file. */
export const MAX_POINTER_BYTES = 1024;

const VERSION_LINE = `version ${LFS_SPEC}\n`;

export function renderPointer(p: LfsPointer): Buffer {
  if (!/^[0-9a-f]{64}$/.test(p.oid)) throw new CheckpointCorrupt(`LFS pointer: oid ${escapeUntrusted(p.oid, 80)} is not 64 hex digits`);
  if (!Number.isSafeInteger(p.size) || p.size < 0) throw new CheckpointCorrupt(`LFS pointer: size ${p.size} is not a byte count`);
  return Buffer.from(`${VERSION_LINE}oid sha256:${p.oid}\nsize ${p.size}\n`, 'utf8');
}

/** Cheap test before parsing: does this blob claim to be a pointer at all? */
export function looksLikePointer(content: Uint8Array): boolean {
  return content.length < MAX_POINTER_BYTES && Buffer.from(content.buffer, content.byteOffset, content.byteLength).subarray(0, VERSION_LINE.length).toString('latin1') === VERSION_LINE;
}

/**
 * Parses a pointer file. Keys after `version` must be sorted and unique (the spec), `oid` must be
 * `sha256:<64 lowercase hex>`, `size` a decimal byte count; other keys (extensions) are refused,
 * since fedgit cannot apply them. `source` names the file in errors.
 */
export function parsePointer(content: Uint8Array, source: string): LfsPointer {
  const fail = (why: string) => new CheckpointCorrupt(`${source}: not a valid Git LFS pointer: ${why}`, { source });
  if (content.length >= MAX_POINTER_BYTES) throw fail(`${content.length} bytes, a pointer has fewer than ${MAX_POINTER_BYTES}`);
  const text = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8');
  if (!text.startsWith(VERSION_LINE)) throw fail(`the first line must be "version ${LFS_SPEC}"`);
  if (!text.endsWith('\n')) throw fail('the last line has no newline');
  const lines = text.slice(VERSION_LINE.length, -1).split('\n');
  const values = new Map<string, string>();
  let previous = '';
  for (const line of lines) {
    const m = /^([a-z0-9.-]+) (.*)$/.exec(line);
    if (!m) throw fail(`malformed line ${escapeUntrusted(JSON.stringify(line), 80)}`);
    const [, key, value] = m as unknown as [string, string, string];
    if (key <= previous) throw fail(`key ${escapeUntrusted(key, 40)} is out of order or repeated`);
    previous = key;
    values.set(key, value);
  }
  const unknown = [...values.keys()].filter((k) => k !== 'oid' && k !== 'size');
  if (unknown.length) throw fail(`unsupported key ${escapeUntrusted(unknown[0]!, 40)}`);
  const oid = /^sha256:([0-9a-f]{64})$/.exec(values.get('oid') ?? '')?.[1];
  if (!oid) throw fail(`oid ${escapeUntrusted(JSON.stringify(values.get('oid') ?? null), 90)} is not sha256:<64 hex digits>`);
  const sizeText = values.get('size') ?? '';
  if (!/^(0|[1-9]\d{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw fail(`size ${escapeUntrusted(JSON.stringify(sizeText), 40)} is not a byte count`);
  return { oid, size: Number(sizeText) };
}
