import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RegistrationQuality } from './quality.js';

/** Bump when anything that changes a registration's result changes outside the parameter text. */
const CACHE_FORMAT = 'fedgit-registration/1';

export type CachedRegistration = {
  format: string;
  key: string;
  file: string;
  toTemplate: number[];
  quality: RegistrationQuality;
  seconds: number;
};

/** sha256 over the parts, each length-prefixed so no two part lists collide; a part may come in chunks. Pure. */
export function cacheKey(parts: readonly (string | Uint8Array | readonly Uint8Array[])[]): string {
  const hash = createHash('sha256').update(CACHE_FORMAT);
  for (const part of parts) {
    const chunks = typeof part === 'string' ? [Buffer.from(part)] : part instanceof Uint8Array ? [part] : part;
    hash.update(`\n${chunks.reduce((sum, c) => sum + c.byteLength, 0)}\n`);
    for (const chunk of chunks) hash.update(chunk);
  }
  return hash.digest('hex');
}

/** The cached registration for `key`, or undefined if there is none (or it is unreadable). */
export async function readCachedRegistration(cacheDir: string, key: string): Promise<CachedRegistration | undefined> {
  let text: string;
  try {
    text = await readFile(entryPath(cacheDir, key), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const entry = JSON.parse(text) as CachedRegistration;
    const ok = entry.format === CACHE_FORMAT && entry.key === key && Array.isArray(entry.toTemplate) && entry.toTemplate.length === 16;
    return ok ? entry : undefined;
  } catch {
    return undefined; // a torn or hand-edited entry is recomputed and overwritten
  }
}

/** Writes through a temporary file and a rename, so a reader never sees half an entry. */
export async function writeCachedRegistration(cacheDir: string, entry: Omit<CachedRegistration, 'format'>): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const target = entryPath(cacheDir, entry.key);
  const temporary = `${target}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temporary, JSON.stringify({ format: CACHE_FORMAT, ...entry }, null, 2) + '\n');
  await rename(temporary, target);
}

const entryPath = (cacheDir: string, key: string): string => path.join(cacheDir, `${key}.json`);
