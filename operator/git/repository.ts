/** A bare git repository that fedgit reads and writes without a work tree. */
import fs from 'node:fs';
import git from 'isomorphic-git';
import { NotFound, CheckpointCorrupt } from '../errors.js';
import { hasObject, readObject, streamObject, writeObject, type ObjectType, type ReadLimits } from './objects.js';
import { byteLength, collect, piecesOf, type ContentSink, type Pieces } from './content.js';
import { parseCommit, parseTree, renderCommit, renderTree, type CommitObject, type Signature } from './commit-object.js';
import { readRef, updateRef, listRefs, deleteRef } from './refs.js';
import { DEFAULT_BRANCH, LFS_ATTRIBUTES_FILE, isLfsFile, parseTrailers, renderLfsAttributes } from './names.js';
import { MAX_POINTER_BYTES, looksLikePointer, parsePointer, renderPointer, type LfsPointer } from '../lfs/pointer.js';
import { hasLfsObject, readLfsObject, streamLfsObject, writeLfsObject } from '../lfs/object-store.js';

/** Commits and trees fedgit writes are a few KiB; one that announces more is refused unread. */
const MAX_COMMIT_BYTES = 1024 * 1024;
const MAX_TREE_BYTES = 1024 * 1024;
/**
 * Parsed commits and trees kept per repository. Objects are named by their hash, which the first
 * read checks, so a kept one can never be stale; the bound keeps a long-running participant small
 * (a commit or a flat tree is well under a KiB in memory).
 */
const KEPT_OBJECTS = 4096;

export type Commit = CommitObject & { readonly oid: string; readonly trailers: ReadonlyArray<readonly [string, string]> };

/** What a push notification says: `ref` moved on the server from `before` to `after` (all zeros: none). */
export type PushedRef = { readonly ref: string; readonly before: string; readonly after: string };

/** How a mirror talks to its server (operator/remote/remote-link.ts); absent for a repository on this disk. */
export interface RemoteSync {
  readonly displayUrl: string;
  refresh(gitdir: string): Promise<boolean>;
  /**
   * The server may have moved (a poll tick, a push notification): the next refresh must ask it.
   * `pushed`: what a push notification says moved, which the refresh may follow without listing.
   */
  markStale(pushed?: PushedRef): void;
  publish(gitdir: string, ref: string, next: string, expected: string | null): Promise<void>;
  /** Brings one LFS object from the server into the mirror's `lfs/objects`, verified. */
  fetchLfsObject(gitdir: string, pointer: LfsPointer, source: string): Promise<void>;
}

/** A file of a commit as git holds it (`Repository.readBlobOrPointer`). */
export type BlobOrPointer =
  | { readonly kind: 'blob'; readonly content: Buffer }
  | { readonly kind: 'lfs-pointer'; readonly pointer: LfsPointer };

/** Which files of a commit go to Git LFS: checkpoints (`*.safetensors`) of at least `minBytes`. */
export type LfsPolicy = { readonly minBytes: number };

export class Repository {
  private readonly commits = new BoundedCache<string, Commit>(KEPT_OBJECTS);
  private readonly trees = new BoundedCache<string, ReturnType<typeof parseTree>>(KEPT_OBJECTS);

  constructor(readonly gitdir: string, readonly remote?: RemoteSync) {}

  /** Where the repository really is: the server URL of a mirror, else the folder. */
  get location(): string {
    return this.remote?.displayUrl ?? this.gitdir;
  }

  /** Brings a mirror up to its server (no-op for a local repository). */
  async refresh(): Promise<void> {
    await this.remote?.refresh(this.gitdir);
  }

  static async isRepository(gitdir: string): Promise<boolean> {
    return fs.existsSync(`${gitdir}/HEAD`);
  }

  /** Creates a bare repository if there is none (idempotent). */
  static async ensureBare(gitdir: string): Promise<Repository> {
    if (!(await Repository.isRepository(gitdir))) await git.init({ fs, gitdir, bare: true, defaultBranch: DEFAULT_BRANCH });
    return new Repository(gitdir);
  }

  readRef(ref: string): Promise<string | null> {
    return readRef(this.gitdir, ref);
  }

  /**
   * Compare-and-swap of a ref. For a mirror, the server must accept the push
   * too; if it does not, the local ref goes back to `expected` and the error stands.
   */
  async updateRef(ref: string, next: string, expected: string | null): Promise<void> {
    await updateRef(this.gitdir, ref, next, expected);
    if (!this.remote) return;
    try {
      await this.remote.publish(this.gitdir, ref, next, expected);
    } catch (e) {
      if (expected) await updateRef(this.gitdir, ref, expected, next).catch(() => undefined);
      else await deleteRef(this.gitdir, ref, next).catch(() => undefined);
      throw e;
    }
  }

  listRefs(prefix: string): Promise<Map<string, string>> {
    return listRefs(this.gitdir, prefix);
  }

  async readCommit(oid: string): Promise<Commit> {
    const kept = this.commits.get(oid);
    if (kept) return kept;
    const object = await readObject(this.gitdir, oid, { maxBytes: MAX_COMMIT_BYTES });
    if (object.type !== 'commit') throw new NotFound(`${oid} is a ${object.type}, not a commit`, { oid, gitdir: this.gitdir });
    const commit = parseCommit(object.content);
    return this.commits.set(oid, { ...commit, oid, trailers: parseTrailers(commit.message) });
  }

  private async readTree(oid: string): Promise<ReturnType<typeof parseTree>> {
    const kept = this.trees.get(oid);
    if (kept) return kept;
    const tree = await readObject(this.gitdir, oid, { maxBytes: MAX_TREE_BYTES });
    if (tree.type !== 'tree') throw new CheckpointCorrupt(`${oid} is a ${tree.type}, not a tree`, { oid, gitdir: this.gitdir });
    return this.trees.set(oid, parseTree(tree.content));
  }

  /** Resolves a full id, a unique abbreviation, a branch, a tag or a full ref to a commit id. */
  async resolve(spec: string): Promise<string> {
    if (/^[0-9a-f]{40}$/.test(spec)) {
      if (await hasObject(this.gitdir, spec)) return spec;
      throw new NotFound(`${spec} names no object in ${this.gitdir}`, { spec, gitdir: this.gitdir });
    }
    for (const ref of [spec, `refs/heads/${spec}`, `refs/tags/${spec}`]) {
      if (!ref.startsWith('refs/')) continue;
      const oid = await this.readRef(ref).catch(() => null);
      if (oid) return oid;
    }
    if (/^[0-9a-f]{4,39}$/.test(spec)) {
      try {
        return await git.expandOid({ fs, gitdir: this.gitdir, oid: spec });
      } catch {
        /* fall through to NotFound */
      }
    }
    throw new NotFound(`${spec} names no commit in ${this.gitdir}`, { spec, gitdir: this.gitdir });
  }

  /**
   * Writes a flat tree of files and a commit over it; moves no ref. `committer` defaults to
   * `author`. With an LFS policy, checkpoints it covers are stored in `lfs/objects` and the tree
   * holds their pointer files, beside a `.gitattributes` that names them for `git lfs`. A file given
   * in pieces is written from them (operator/git/content.ts).
   */
  async writeCommit(input: { files: Record<string, Uint8Array | Pieces>; parents: readonly string[]; message: string; author: Signature; committer?: Signature; lfs?: LfsPolicy }): Promise<string> {
    const files: Record<string, Uint8Array | Pieces> = { ...input.files };
    const inLfs = Object.keys(files).filter((name) => input.lfs && isLfsFile(name) && byteLength(piecesOf(files[name]!)) >= input.lfs.minBytes);
    for (const name of inLfs) files[name] = renderPointer(await writeLfsObject(this.gitdir, files[name]!));
    if (inLfs.length > 0) files[LFS_ATTRIBUTES_FILE] = Buffer.from(renderLfsAttributes(inLfs), 'utf8');
    const entries = [];
    for (const [name, content] of Object.entries(files)) entries.push({ name, oid: await writeObject(this.gitdir, 'blob', content) });
    const tree = await writeObject(this.gitdir, 'tree', renderTree(entries));
    const body = renderCommit({ tree, parents: input.parents, author: input.author, committer: input.committer ?? input.author, message: input.message });
    return writeObject(this.gitdir, 'commit', body);
  }

  /**
   * A file of a commit. A checkpoint committed as a Git LFS pointer is read through LFS: from
   * `lfs/objects`, fetched from the server first when a mirror lacks it, its size checked against
   * the limit before any byte moves and its SHA-256 checked as it is read.
   */
  async readFile(commitOid: string, name: string, limits: ReadLimits = {}): Promise<Buffer> {
    const file = await this.readBlobOrPointer(commitOid, name, limits);
    if (file.kind === 'blob') return file.content;
    const verified = await this.fetchIfMissing(file.pointer, `${name} of ${commitOid}`);
    return readLfsObject(this.gitdir, file.pointer, `${name} of ${commitOid}`, { verified });
  }

  /**
   * A file of a commit as git holds it: the blob's content, or, for a checkpoint committed as a
   * Git LFS pointer, the pointer — its object is neither read nor fetched. The limit applies to
   * the blob and to the size a pointer announces; a malformed pointer is refused (CheckpointCorrupt).
   */
  async readBlobOrPointer(commitOid: string, name: string, limits: ReadLimits = {}): Promise<BlobOrPointer> {
    const blob = await readObject(this.gitdir, await this.fileOid(commitOid, name), limits);
    if (blob.type !== 'blob') throw notBlob(commitOid, name);
    if (!isLfsFile(name) || !looksLikePointer(blob.content)) return { kind: 'blob', content: blob.content };
    const pointer = parsePointer(blob.content, `${name} of ${commitOid} in ${this.location}`);
    checkAnnouncedSize(pointer, `${name} of ${commitOid}`, limits);
    return { kind: 'lfs-pointer', pointer };
  }

  /**
   * `readFile` a window at a time, never whole (for big loose objects of stored blocks and LFS
   * objects): the content goes to the sink `open` returns once its size is known. Every check of
   * `readFile` applies, the hashes only after the last window: nothing taken may be trusted before
   * this resolves.
   */
  async streamFile(commitOid: string, name: string, limits: ReadLimits, open: (size: number) => ContentSink): Promise<void> {
    const seen: { type?: ObjectType; small?: ReturnType<typeof collect> } = {};
    await streamObject(this.gitdir, await this.fileOid(commitOid, name), limits, (type, size) => {
      seen.type = type;
      if (type !== 'blob') return () => undefined;
      if (!isLfsFile(name) || size >= MAX_POINTER_BYTES) return open(size);
      seen.small = collect(size);
      return seen.small.sink;
    });
    if (seen.type !== 'blob') throw notBlob(commitOid, name);
    const content = seen.small?.content();
    if (!content) return;
    if (!looksLikePointer(content)) return open(content.length)(content);
    const pointer = parsePointer(content, `${name} of ${commitOid} in ${this.location}`);
    checkAnnouncedSize(pointer, `${name} of ${commitOid}`, limits);
    const verified = await this.fetchIfMissing(pointer, `${name} of ${commitOid}`);
    await streamLfsObject(this.gitdir, pointer, `${name} of ${commitOid}`, open(pointer.size), { verified });
  }

  private async fileOid(commitOid: string, name: string): Promise<string> {
    const commit = await this.readCommit(commitOid);
    const entry = (await this.readTree(commit.tree)).find((e) => e.name === name);
    if (!entry) throw new NotFound(`commit ${commitOid} has no file ${name}`, { commit: commitOid, file: name });
    return entry.oid;
  }

  /** Whether the commit's tree has the file; neither its blob nor its LFS object is read. */
  async hasFile(commitOid: string, name: string): Promise<boolean> {
    const commit = await this.readCommit(commitOid);
    return (await this.readTree(commit.tree)).some((e) => e.name === name);
  }

  /**
   * The Git LFS pointers a commit holds in place of checkpoints, read from git alone (no object is
   * read or fetched). A checkpoint that is a plain blob, or a blob that is no valid pointer, names
   * no object and is left out.
   */
  async readLfsPointers(commitOid: string): Promise<Array<{ readonly name: string; readonly pointer: LfsPointer }>> {
    const commit = await this.readCommit(commitOid);
    const found = [];
    for (const entry of await this.readTree(commit.tree)) {
      if (!isLfsFile(entry.name)) continue;
      // A plain-blob checkpoint is refused unread by the limit; only pointer-sized blobs are read.
      const blob = await readObject(this.gitdir, entry.oid, { maxBytes: MAX_POINTER_BYTES - 1 }).catch(() => undefined);
      if (!blob || blob.type !== 'blob' || !looksLikePointer(blob.content)) continue;
      try {
        found.push({ name: entry.name, pointer: parsePointer(blob.content, `${entry.name} of ${commitOid}`) });
      } catch {
        /* a malformed pointer names no readable object */
      }
    }
    return found;
  }

  /** Brings a mirror's missing object from the server; true when it was just downloaded (and verified). */
  private async fetchIfMissing(pointer: LfsPointer, source: string): Promise<boolean> {
    const fetch = this.remote !== undefined && !(await hasLfsObject(this.gitdir, pointer));
    if (fetch) await this.remote!.fetchLfsObject(this.gitdir, pointer, source);
    return fetch;
  }

  /** Commits from `head` along first parents, newest first, while `keep` says so. */
  async firstParentChain(head: string, keep: (c: Commit) => boolean = () => true, limit = Infinity): Promise<Commit[]> {
    const chain: Commit[] = [];
    let next: string | undefined = head;
    while (next && chain.length < limit) {
      const commit = await this.readCommit(next);
      if (!keep(commit)) break;
      chain.push(commit);
      next = commit.parents[0];
    }
    return chain;
  }
}

/** Refuses, before any byte of the object moves, a pointer that announces more than the limit allows. */
function checkAnnouncedSize(pointer: LfsPointer, source: string, limits: ReadLimits): void {
  if (limits.maxBytes !== undefined && pointer.size > limits.maxBytes) {
    throw new CheckpointCorrupt(`${source}: its LFS pointer announces ${pointer.size} bytes, more than the ${limits.maxBytes} allowed here`, { oid: pointer.oid });
  }
}

const notBlob = (commit: string, name: string) => new CheckpointCorrupt(`${name} in ${commit} is not a blob`, { commit });

/** A map that forgets its oldest entries beyond `limit` (insertion order). */
class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly limit: number) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  set(key: K, value: V): V {
    this.entries.set(key, value);
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value as K);
    return value;
  }
}
