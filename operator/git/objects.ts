/**
 * Git objects in a bare repository.
 *
 * Loose objects are written here, not with isomorphic-git: its writeBlob
 * deflates at level 6 (~40 MB/s) from one in-memory copy, and float weights
 * barely compress. A loose object is any zlib stream of `<type> <size>\0<bytes>`
 * named by its SHA-1, so we stream it through node's zlib at a fast level and
 * rename it into place (atomic: a reader never sees half an object).
 * Reading takes the loose file through node's zlib and falls back to
 * isomorphic-git for packed objects.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, rename, rm, stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import git from 'isomorphic-git';
import { NotFound, CheckpointCorrupt } from '../errors.js';

export type ObjectType = 'blob' | 'tree' | 'commit' | 'tag';
export type GitObject = { readonly type: ObjectType; readonly content: Buffer };

const inflate = promisify(zlib.inflate);
/** Weights barely compress; level 1 keeps most of the (small) gain at a fraction of level 6's time. */
const DEFLATE_LEVEL = zlib.constants.Z_BEST_SPEED;
const CHUNK_BYTES = 4 * 1024 * 1024;

export function objectId(type: ObjectType, content: Uint8Array): string {
  return createHash('sha1').update(`${type} ${content.length}\0`).update(content).digest('hex');
}

function loosePath(gitdir: string, oid: string): string {
  return path.join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

export async function writeObject(gitdir: string, type: ObjectType, content: Uint8Array): Promise<string> {
  const oid = objectId(type, content);
  const target = loosePath(gitdir, oid);
  if (await exists(target)) return oid;
  await mkdir(path.dirname(target), { recursive: true });
  const temp = path.join(path.dirname(target), `tmp_obj_${randomBytes(6).toString('hex')}`);
  try {
    await pipeline(chunks(`${type} ${content.length}\0`, content), zlib.createDeflate({ level: DEFLATE_LEVEL }), fs.createWriteStream(temp, { mode: 0o444 }));
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  return oid;
}

function chunks(header: string, content: Uint8Array): Readable {
  return Readable.from(
    (function* () {
      yield Buffer.from(header, 'utf8');
      for (let at = 0; at < content.length; at += CHUNK_BYTES) {
        yield Buffer.from(content.buffer, content.byteOffset + at, Math.min(CHUNK_BYTES, content.length - at));
      }
    })(),
    { objectMode: false },
  );
}

export async function readObject(gitdir: string, oid: string): Promise<GitObject> {
  if (!/^[0-9a-f]{40}$/.test(oid)) throw new NotFound(`not a full object id: ${oid}`, { oid });
  let compressed: Buffer;
  try {
    compressed = await readFile(loosePath(gitdir, oid));
  } catch {
    return readPackedObject(gitdir, oid);
  }
  let raw: Buffer;
  try {
    raw = await inflate(compressed);
  } catch (cause) {
    throw new CheckpointCorrupt(`object ${oid} in ${gitdir} is not a valid zlib stream`, { oid, gitdir }, { cause });
  }
  return parseLooseObject(raw, oid, gitdir);
}

function parseLooseObject(raw: Buffer, oid: string, gitdir: string): GitObject {
  const nul = raw.indexOf(0);
  const header = nul > 0 ? raw.subarray(0, nul).toString('latin1') : '';
  const match = /^(blob|tree|commit|tag) (\d+)$/.exec(header);
  if (!match || Number(match[2]) !== raw.length - nul - 1) {
    throw new CheckpointCorrupt(`object ${oid} in ${gitdir} has a bad header`, { oid, gitdir });
  }
  const content = raw.subarray(nul + 1);
  if (objectId(match[1] as ObjectType, content) !== oid) {
    throw new CheckpointCorrupt(`object ${oid} in ${gitdir} does not hash to its name`, { oid, gitdir });
  }
  return { type: match[1] as ObjectType, content };
}

async function readPackedObject(gitdir: string, oid: string): Promise<GitObject> {
  try {
    const result = await git.readObject({ fs, gitdir, oid, format: 'content' });
    return { type: result.type as ObjectType, content: Buffer.from(result.object as Uint8Array) };
  } catch (cause) {
    throw new NotFound(`object ${oid} not found in ${gitdir}`, { oid, gitdir });
  }
}

export async function hasObject(gitdir: string, oid: string): Promise<boolean> {
  if (await exists(loosePath(gitdir, oid))) return true;
  try {
    await readPackedObject(gitdir, oid);
    return true;
  } catch {
    return false;
  }
}
