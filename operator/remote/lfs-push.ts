/**
 * Which LFS objects a push must upload first: the pointers in the commits the push brings to the
 * server, found by walking from the new commit back to what the server already has (the old
 * value of the ref, or any commit another published ref names). Uploading them before the git
 * push means a ref on the server never names a pointer whose object is missing there.
 */
import { readObject } from '../git/objects.js';
import { parseCommit, parseTree } from '../git/commit-object.js';
import { isLfsFile } from '../git/names.js';
import { looksLikePointer, MAX_POINTER_BYTES, parsePointer, type LfsPointer } from '../lfs/pointer.js';

/** Far more commits than one push of fedgit's brings; past it, the batch API sorts out what the server has. */
const MAX_COMMITS = 10_000;

export async function lfsPointersToPush(gitdir: string, next: string, published: ReadonlySet<string>): Promise<LfsPointer[]> {
  const found = new Map<string, LfsPointer>();
  const seen = new Set<string>();
  const queue = [next];
  while (queue.length > 0 && seen.size < MAX_COMMITS) {
    const oid = queue.pop()!;
    if (published.has(oid) || seen.has(oid)) continue;
    seen.add(oid);
    const commit = parseCommit((await readObject(gitdir, oid)).content);
    for (const entry of parseTree((await readObject(gitdir, commit.tree)).content)) {
      if (!isLfsFile(entry.name)) continue;
      // A blob over the spec's bound is the file itself, not a pointer: it is not read (a model in git is megabytes).
      const blob = await readObject(gitdir, entry.oid, { maxBytes: MAX_POINTER_BYTES }).catch(() => undefined);
      if (blob && looksLikePointer(blob.content)) {
        const pointer = parsePointer(blob.content, `${entry.name} of ${oid}`);
        found.set(pointer.oid, pointer);
      }
    }
    queue.push(...commit.parents);
  }
  return [...found.values()];
}
