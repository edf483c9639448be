/**
 * The cache key of a DICOM series folder. Names, sizes and mtimes alone could collide: two
 * series unpacked from one archive can share file names, sizes (same matrix) and the archive's
 * 2-second mtimes. So the first bytes of each file are hashed as well: they hold the DICOM
 * header, with its globally unique SOP Instance UID.
 */
import { createHash } from 'node:crypto';

export type SeriesFile = {
  name: string;
  size: number;
  mtimeMs: number;
  /** sha256 of the file's first HEADER_BYTES bytes, hex. */
  headSha256: string;
};

export const HEADER_BYTES = 8192;

/** Hex key over the files (in any order) and how they are converted. Pure. */
export function seriesKey(files: readonly SeriesFile[], conversion: string): string {
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ conversion, files: sorted.map((f) => [f.name, f.size, Math.round(f.mtimeMs), f.headSha256]) }));
  return hash.digest('hex').slice(0, 32);
}
