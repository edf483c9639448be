/**
 * A pack (git's format v2, whole objects, no deltas) of what a push of one ref brings to a server:
 * the commits from the new tip back to one the server holds, and the trees and blobs of those
 * commits that the held commits' trees do not have. Objects are deflated by node's zlib, so
 * nothing is inflated and deflated again in JavaScript (isomorphic-git's push does both with
 * pako); a big object is deflated only if a sample of it shrinks (see `packedStream`).
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { parseCommit, parseTree } from './commit-object.js';
import { readObject, zlibStream, STORE_THRESHOLD_BYTES, type ObjectType } from './objects.js';

const TYPE_CODES: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const SUBTREE = '40000';
const SUBMODULE = '160000';

/**
 * The objects `next` brings over the commits in `held` (which the server holds, with all they
 * reach), in the order git's own packs use (commits, then trees and blobs as reached); undefined
 * when more than `maxCommits` commits would go, or none of them reaches a held commit (a push
 * that is not a fast-forward of what the server holds).
 */
export async function objectsToSend(gitdir: string, next: string, held: ReadonlySet<string>, maxCommits = 64): Promise<string[] | undefined> {
  const commits: Array<{ readonly oid: string; readonly tree: string }> = [];
  const boundary: string[] = [];
  const queue = [next];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const oid = queue.shift()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    if (held.has(oid)) {
      boundary.push(oid);
      continue;
    }
    if (commits.length >= maxCommits) return undefined;
    const commit = await readCommitObject(gitdir, oid);
    commits.push({ oid, tree: commit.tree });
    queue.push(...commit.parents);
  }
  if (boundary.length === 0) return undefined;
  const have = new Set<string>();
  for (const oid of boundary) await reachFromTree(gitdir, (await readCommitObject(gitdir, oid)).tree, have);
  const send = commits.map((c) => c.oid);
  for (const { tree } of commits) await reachFromTree(gitdir, tree, have, send);
  return send;
}

async function readCommitObject(gitdir: string, oid: string) {
  const object = await readObject(gitdir, oid);
  if (object.type !== 'commit') throw new Error(`${oid} is a ${object.type}, not a commit`);
  return parseCommit(object.content);
}

/** Adds the tree `oid` and everything below it not in `have` to `have` (and to `found`); only trees are read. */
async function reachFromTree(gitdir: string, oid: string, have: Set<string>, found?: string[]): Promise<void> {
  if (have.has(oid)) return;
  have.add(oid);
  found?.push(oid);
  const tree = await readObject(gitdir, oid);
  if (tree.type !== 'tree') throw new Error(`${oid} is a ${tree.type}, not a tree`);
  for (const entry of parseTree(tree.content)) {
    if (entry.mode === SUBMODULE) continue;
    if (entry.mode === SUBTREE) await reachFromTree(gitdir, entry.oid, have, found);
    else if (!have.has(entry.oid)) {
      have.add(entry.oid);
      found?.push(entry.oid);
    }
  }
}

/** The pack of `oids`, in pieces (the header, each object's entry, the SHA-1 trailer), read from `gitdir` one object at a time. */
export async function writePack(gitdir: string, oids: readonly string[]): Promise<Buffer[]> {
  const hash = createHash('sha1');
  const pieces: Buffer[] = [];
  const add = (piece: Buffer) => {
    hash.update(piece);
    pieces.push(piece);
  };
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(oids.length, 8);
  add(header);
  for (const oid of oids) {
    const { type, content } = await readObject(gitdir, oid);
    add(entryHeader(TYPE_CODES[type], content.length));
    add(packedStream(content));
  }
  pieces.push(hash.digest());
  return pieces;
}

const SAMPLE_BYTES = 64 * 1024;
/** A sample must shrink below this share of its size for the whole object to be deflated. */
const WORTH_DEFLATING = 0.9;

/**
 * An object's zlib stream in a pack. Small objects are deflated. Trained weights barely compress
 * (measured: 0.92 of their size at zlib level 1, at ~18 ms per MB, against 0.3 ms per MB stored),
 * but some checkpoints do (zeros, quantised or pruned layers, the bench's no-op weights: 0.008):
 * a 64 KiB sample from the middle of a big object, deflated at level 1 (~1 ms), decides.
 */
function packedStream(content: Buffer): Buffer {
  if (content.length < STORE_THRESHOLD_BYTES) return zlibStream(content);
  const middle = Math.max(0, Math.floor((content.length - SAMPLE_BYTES) / 2));
  const sample = content.subarray(middle, middle + SAMPLE_BYTES);
  const shrinks = zlib.deflateRawSync(sample, { level: 1 }).length < WORTH_DEFLATING * sample.length;
  return shrinks ? zlib.deflateSync(content, { level: 1 }) : zlibStream(content);
}

/** An entry's type and size: 3 bits of type and 4 of size in the first byte, 7 bits of size in each next, high bit = more. */
export function entryHeader(type: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (type << 4) | (size % 16);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest % 128;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}
