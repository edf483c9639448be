/** Bytes a repository's objects take on disk, loose and packed: what a federation's rounds cost in storage. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

export type DiskUsage = { readonly loose: number; readonly packed: number };

export async function readDiskUsage(gitdir: string): Promise<DiskUsage> {
  let loose = 0, packed = 0;
  const objects = path.join(gitdir, 'objects');
  for (const entry of await readdir(objects).catch(() => [] as string[])) {
    const isPack = entry === 'pack';
    if (!isPack && !/^[0-9a-f]{2}$/.test(entry)) continue;
    for (const file of await readdir(path.join(objects, entry)).catch(() => [] as string[])) {
      const bytes = await stat(path.join(objects, entry, file)).then((s) => s.size, () => 0);
      if (isPack) packed += bytes;
      else loose += bytes;
    }
  }
  return { loose, packed };
}

export function renderBytes(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MB` : `${(bytes / 1024).toFixed(0)} KB`;
}
