import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { DataInvalid } from '../../sdk/index.js';
import { isGzip, parseNifti } from './parse-nifti.js';
import { renderNifti, type RenderOptions } from './render-nifti.js';
import type { NiftiVolume } from './volume.js';

const gunzipAsync = promisify(gunzip);
const gzipAsync = promisify(gzip);
/** Node's default 16 KiB chunks cost a thread-pool round trip each: 1 MiB makes async (de)compression ~2× faster. */
const ZLIB_CHUNK_BYTES = 1 << 20;

/** Reads a .nii or .nii.gz file (gzip is detected by content); decompression runs off the main thread. */
export async function readNifti(path: string): Promise<NiftiVolume> {
  let bytes: Uint8Array = await readFile(path);
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes, { chunkSize: ZLIB_CHUNK_BYTES });
    } catch (cause) {
      throw new DataInvalid(`${path}: corrupt gzip data (${(cause as Error).message})`, { file: path, reason: 'gzip' }, { cause });
    }
  }
  return parseNifti(bytes, path);
}

/** Writes a single-file NIfTI-1; `.gz` paths are gzipped at level 1 (fast, the voxels are noisy anyway). */
export async function writeNifti(path: string, volume: Pick<NiftiVolume, 'dims' | 'hu' | 'affine' | 'description'>, options: RenderOptions = {}): Promise<void> {
  const raw = renderNifti(volume, options);
  const bytes = path.endsWith('.gz') ? await gzipAsync(raw, { level: 1, chunkSize: ZLIB_CHUNK_BYTES }) : raw;
  await writeFile(path, bytes);
}
