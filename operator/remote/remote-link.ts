/**
 * A local bare mirror of a repository on a git server (smart HTTP): `refresh`
 * lists the server's refs cheaply (or follows what push events named) and
 * fetches only when they moved; `publish` pushes one ref without force, so a
 * push is a compare-and-swap — a server that moved rejects it as not a fast-forward.
 * Fetches and pushes from a known value are requests fedgit writes
 * (upload-pack.ts, receive-pack.ts); isomorphic-git lists refs, makes the push
 * that creates a ref, and fetches when fedgit's own fetch cannot read an answer.
 * Credentials go in the Authorization header only; URLs in messages never carry them.
 */
import fs from 'node:fs';
import git from 'isomorphic-git';
import type { HttpClient } from 'isomorphic-git';
import { FedgitError, RefConflict } from '../errors.js';
import { readRef, updateRef, listRefs, deleteRef } from '../git/refs.js';
import { hasObject, readObject, writeObject } from '../git/objects.js';
import { advertisingHead } from './advertise-head.js';
import { advertisedCapabilities, recordAdvertisement, renderReceivePackAdvertisement, renderUploadPackAdvertisement, replayAdvertisement, type RecordedAdvertisement } from './replay-advertisement.js';
import { escapeUntrusted } from '../text/untrusted.js';
import type { Log } from '../contracts.js';
import { displayUrl } from './http-client.js';
import { LfsClient } from './lfs-client.js';
import { lfsPointersToPush } from './lfs-push.js';
import type { LfsPointer } from '../lfs/pointer.js';
import type { PushedRef } from '../git/repository.js';
import { objectsToSend, writePack } from '../git/pack-writer.js';
import { readPack } from '../git/pack-reader.js';
import { requestedFetchCapabilities, sendUploadPack, UploadPackRefused, uploadPackRequest } from './upload-pack.js';
import { receivePackRequest, requestedCapabilities, sendReceivePack, type ReceivePackCommand, type ReceivePackReport } from './receive-pack.js';

export type RemoteAuth = { readonly username: string; readonly token: string };

export class RemoteUnreachable extends FedgitError {
  constructor(url: string, why: string, options?: { cause?: unknown }) {
    super('REMOTE_UNREACHABLE', `${url}: ${why}`, { url }, options);
  }
}

export class RemoteDenied extends FedgitError {
  constructor(url: string, why: string) {
    super('REMOTE_DENIED', `${url}: ${why}`, { url });
  }
}

/** A server refused a push for a reason other than a moved ref (fsck, a hook, a protection rule). */
export class PushRefused extends FedgitError {
  constructor(url: string, ref: string, why: string) {
    super('PUSH_REFUSED', `${url}: the server refused the push of ${ref}: ${why}`, { url, ref });
  }
}

const MIRRORED = /^refs\/(heads|tags)\//;
const NO_OBJECT = '0'.repeat(40);
const WRITE_ORDER = { blob: 0, tree: 1, tag: 2, commit: 3 } as const;
const isObjectId = (oid: string) => /^[0-9a-f]{40}$/.test(oid);

const sameRefs = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) => a.size === b.size && [...a].every(([ref, oid]) => b.get(ref) === oid);

/** What git servers say when the ref moved since we read it: a real compare-and-swap conflict. */
const MOVED = /non-fast-forward|not-fast-forward|fetch first|stale info|failed to lock|cannot lock ref|already exists/i;

export type RemoteLinkOptions = {
  /**
   * Ask the server only after `markStale()` (a poll tick or a push notification said it may have
   * moved), not at every refresh: a participant driven by webhooks then lists a server's refs once
   * per notification instead of once per reconcile.
   */
  readonly listOnlyWhenStale?: boolean;
};

export class RemoteLink {
  /**
   * The server's refs as far as this mirror knows: the last listing, with this participant's own
   * pushes since applied. Undefined until the mirror has been compared with the server, and after
   * a push whose outcome is unknown.
   */
  private lastListing: Map<string, string> | undefined;
  /** The server's last real receive-pack advertisement: how to answer a push's own (its URL, headers, capabilities). */
  private receivePack: { readonly template: RecordedAdvertisement; readonly capabilities: string } | undefined;
  /** The same for upload-pack, from the last listing: how to answer a fetch of what push notifications named. */
  private uploadPack: { readonly template: RecordedAdvertisement; readonly capabilities: string } | undefined;
  /** What the push notifications since the last refresh said moved, in order; undefined once the server may have moved unannounced (a poll tick). */
  private announced: PushedRef[] | undefined = [];
  /** Bumped by `markStale`; a refresh that completes records the generation it started from. */
  private generation = 0;
  private refreshedGeneration = -1;
  readonly displayUrl: string;

  /** The client as given (without fedgit's adjustments of what the server says). */
  private readonly rawHttp: HttpClient;
  private readonly http: HttpClient;
  private readonly lfs: LfsClient;

  constructor(readonly url: string, http: HttpClient, private readonly auth: RemoteAuth | undefined, private readonly log: Log, private readonly options: RemoteLinkOptions = {}) {
    this.displayUrl = displayUrl(url);
    this.rawHttp = http;
    this.http = advertisingHead(http);
    this.lfs = new LfsClient(url, auth, log);
  }

  /** One LFS object of a fetched commit, into the mirror's `lfs/objects` (verified as it arrives). */
  async fetchLfsObject(gitdir: string, pointer: LfsPointer, source: string): Promise<void> {
    await this.lfs.download(gitdir, pointer, source);
  }

  /** The LFS objects of the commits this push brings, uploaded before the ref can name them. */
  private async uploadLfsObjects(gitdir: string, ref: string, next: string, expected: string | null): Promise<void> {
    const published = new Set([...(await listRefs(gitdir, 'refs/'))].filter(([r]) => r !== ref).map(([, oid]) => oid));
    if (expected) published.add(expected);
    await this.lfs.upload(gitdir, await lfsPointersToPush(gitdir, next, published), ref);
  }

  /**
   * The server may have moved since the last refresh: the next one asks it. `pushed`: what a push
   * notification says moved; when every notification since the last refresh said so, and each
   * starts from the value the mirror knows, the refresh fetches what they name without listing.
   */
  markStale(pushed?: PushedRef): void {
    this.generation++;
    if (pushed && this.announced) this.announced.push(pushed);
    else this.announced = undefined;
  }

  private headers(): Record<string, string> {
    return this.auth ? { authorization: `Basic ${Buffer.from(`${this.auth.username}:${this.auth.token}`).toString('base64')}` } : {};
  }

  private explain(e: unknown): FedgitError {
    if (e instanceof FedgitError) return e;
    const err = e as { code?: string; data?: { statusCode?: number }; message?: string };
    const status = err.data?.statusCode;
    if (status === 401 || status === 403) return new RemoteDenied(this.displayUrl, `the server refused access (HTTP ${status}); check this participant's user and token`);
    if (status) return new RemoteUnreachable(this.displayUrl, `HTTP ${status}`, { cause: e });
    return new RemoteUnreachable(this.displayUrl, String(err.message ?? e).replaceAll(this.url, this.displayUrl), { cause: e });
  }

  /**
   * What a refused push means. Servers word "the ref moved" in many ways (git itself says only
   * "failed to update ref" when the value a push replaces is stale), so a refusal the words do not
   * settle is settled by the server: the ref no longer at `expected` is a RefConflict.
   */
  private async refusal(ref: string, expected: string | null, why: string): Promise<FedgitError> {
    if (MOVED.test(why)) return new RefConflict(`${ref} on ${this.displayUrl}`, expected, null);
    const now = await this.listRefs(this.http).then((refs) => refs.get(ref) ?? null, () => undefined);
    if (now !== undefined && now !== expected) return new RefConflict(`${ref} on ${this.displayUrl}`, expected, now);
    return new PushRefused(this.displayUrl, ref, escapeUntrusted(why.replaceAll(this.url, this.displayUrl).replace(/\s+/g, ' ').trim(), 300));
  }

  /** The server's branch and tag refs (one small request), listed through `http`. */
  private async listRefs(http: HttpClient): Promise<Map<string, string>> {
    try {
      // Protocol v1 lists refs in one request (v2 needs two); fedgit's repositories hold a handful of refs.
      const refs = await git.listServerRefs({ http, url: this.url, headers: this.headers(), protocolVersion: 1 });
      return new Map(refs.filter((r) => MIRRORED.test(r.ref) && /^[0-9a-f]{40}$/.test(r.oid)).map((r) => [r.ref, r.oid]));
    } catch (e) {
      throw this.explain(e);
    }
  }

  /**
   * Brings the mirror up to the server; returns whether anything moved. One request when nothing
   * did: the listing. Each branch that moved costs one more, its pack: the fetch is answered the
   * advertisement the listing received (operator/remote/replay-advertisement.ts).
   *
   * When only push notifications said the server moved, and each names a ref's old value as the
   * mirror knows it, the listing is skipped: the fetch is answered an advertisement of the refs
   * the notifications lead to. A server that no longer holds what a notification named as a tip
   * (the ref moved again, the notification was wrong) sends nothing for it, and the refresh lists
   * it after all.
   */
  async refresh(gitdir: string): Promise<boolean> {
    const generation = this.generation;
    if (this.options.listOnlyWhenStale && this.refreshedGeneration === generation && this.lastListing !== undefined) return false;
    const announced = this.announced;
    this.announced = [];
    try {
      const told = this.options.listOnlyWhenStale ? this.refsAnnounced(announced) : undefined;
      const moved = (told && (await this.fetchAnnounced(gitdir, told))) ?? (await this.listAndFetch(gitdir));
      this.refreshedGeneration = generation;
      return moved;
    } catch (e) {
      this.announced = undefined;
      throw e;
    }
  }

  /** The server's refs after the announced pushes, or undefined when they do not follow from the last listing. */
  private refsAnnounced(announced: readonly PushedRef[] | undefined): Map<string, string> | undefined {
    if (!announced?.length || !this.lastListing || !this.uploadPack) return undefined;
    const refs = new Map(this.lastListing);
    for (const { ref, before, after } of announced) {
      if (!MIRRORED.test(ref) || !isObjectId(after) || after === NO_OBJECT) return undefined;
      const known = refs.get(ref) ?? NO_OBJECT;
      if (known === after) continue; // a listing since the push already saw it
      if (known !== before) return undefined; // a notification was missed or came out of order
      refs.set(ref, after);
    }
    return refs;
  }

  /** Fetches what the notifications named; undefined when the server did not agree (then the caller lists it). */
  private async fetchAnnounced(gitdir: string, told: Map<string, string>): Promise<boolean | undefined> {
    const { template, capabilities } = this.uploadPack!;
    try {
      return await this.bringMirrorTo(gitdir, told, { ...template, body: renderUploadPackAdvertisement(told, capabilities) });
    } catch (e) {
      this.log.debug(`${this.displayUrl}: fetching what the push notifications named failed (${escapeUntrusted(String((e as Error).message ?? e), 300)}); listing the server instead`);
      return undefined;
    }
  }

  private async listAndFetch(gitdir: string): Promise<boolean> {
    const recorder = recordAdvertisement(this.rawHttp, 'git-upload-pack');
    const remote = await this.listRefs(advertisingHead(recorder.http));
    const recorded = recorder.recorded();
    const capabilities = recorded && advertisedCapabilities(recorded.body);
    if (recorded && capabilities !== undefined) this.uploadPack = { template: recorded, capabilities };
    if (this.lastListing && sameRefs(remote, this.lastListing)) return false;
    return this.bringMirrorTo(gitdir, remote, recorded);
  }

  /** Fetches every branch of `remote` the mirror does not have and sets the mirror's refs to it; the fetch is answered `advertisement`. */
  private async bringMirrorTo(gitdir: string, remote: Map<string, string>, advertisement: RecordedAdvertisement | undefined): Promise<boolean> {
    const local = await listRefs(gitdir, 'refs/');
    const moved = [...remote].filter(([ref, oid]) => local.get(ref) !== oid);
    await this.dropUnpushed(gitdir, local, remote);
    const fetchHttp = advertisingHead(replayAdvertisement(this.rawHttp, advertisement));
    const branches = moved.filter(([ref]) => ref.startsWith('refs/heads/')).map(([, oid]) => oid);
    const fetched = branches.length > 0 && (await this.ownFetch(gitdir, branches, local));
    // Otherwise through isomorphic-git, branches one at a time: a repository whose HEAD names no
    // branch (fedgit's global and edge repositories) cannot be fetched whole, and a single-branch
    // fetch offers the local branch as "have", so only new objects travel. Tags point at commits
    // the branches brought.
    for (const [ref, oid] of moved.sort(([a], [b]) => (a.startsWith('refs/heads/') ? 0 : 1) - (b.startsWith('refs/heads/') ? 0 : 1))) {
      if (ref.startsWith('refs/heads/')) {
        if (!fetched) {
          try {
            await this.ensureRemoteConfig(gitdir);
            await git.fetch({ fs, http: fetchHttp, gitdir, remote: 'origin', url: this.url, headers: this.headers(), ref: ref.slice('refs/heads/'.length), remoteRef: ref, singleBranch: true, tags: false, prune: false });
          } catch (e) {
            throw this.explain(e);
          }
        }
        // isomorphic-git reports no error when the server answers a want it refuses ("not our ref"):
        // a ref is never set to a commit the mirror does not hold.
        if (!(await hasObject(gitdir, oid))) throw new RemoteUnreachable(this.displayUrl, `the server sent no commit ${oid.slice(0, 8)} for ${escapeUntrusted(ref, 200)}`);
      } else if (!(await hasObject(gitdir, oid))) {
        continue;
      }
      const current = await readRef(gitdir, ref);
      if (current !== oid) await updateRef(gitdir, ref, oid, current);
    }
    this.lastListing = remote;
    return moved.length > 0;
  }

  /**
   * Fetches `wants` in one upload-pack request written by fedgit (operator/remote/upload-pack.ts,
   * operator/git/pack-reader.ts) and stores their objects loose, inflated and hashed by node
   * rather than by isomorphic-git's JavaScript. False when it does not apply (no upload-pack
   * advertisement seen yet) or the answer could not be read: isomorphic-git's fetch then tries.
   */
  private async ownFetch(gitdir: string, wants: readonly string[], local: ReadonlyMap<string, string>): Promise<boolean> {
    if (!this.uploadPack) return false;
    const capabilities = requestedFetchCapabilities(this.uploadPack.capabilities);
    const haves = [...new Set(local.values())].filter((oid) => /^[0-9a-f]{40}$/.test(oid));
    let pack: Buffer;
    try {
      pack = await sendUploadPack(this.rawHttp, this.url, this.headers(), uploadPackRequest([...new Set(wants)], haves, capabilities), capabilities.split(' ').includes('side-band-64k'));
    } catch (e) {
      if (e instanceof UploadPackRefused) throw new RemoteUnreachable(this.displayUrl, `the server refused the fetch: ${escapeUntrusted(e.message, 300)}`);
      if (e instanceof FedgitError || (e as { data?: { statusCode?: number } }).data?.statusCode) throw this.explain(e);
      this.log.debug(`${this.displayUrl}: fedgit's own fetch could not read the answer (${escapeUntrusted((e as Error).message, 300)}); fetching with isomorphic-git`);
      return false;
    }
    try {
      const objects = await readPack(pack, (oid) => readObject(gitdir, oid));
      // Commits last: a commit on disk always has its tree and blobs.
      for (const object of objects.sort((a, b) => WRITE_ORDER[a.type] - WRITE_ORDER[b.type])) await writeObject(gitdir, object.type, object.content);
    } catch (e) {
      this.log.debug(`${this.displayUrl}: the pack of fedgit's own fetch could not be read (${escapeUntrusted((e as Error).message, 300)}); fetching with isomorphic-git`);
      return false;
    }
    return true;
  }

  /**
   * A branch or tag the mirror has and the server does not: a process killed between moving the
   * local ref and pushing it (a failed push is undone in place). Left alone, it would look
   * published for good — a first update would wait for a merge that cannot come.
   */
  private async dropUnpushed(gitdir: string, local: Map<string, string>, remote: Map<string, string>): Promise<void> {
    for (const [ref, oid] of local) {
      if (!MIRRORED.test(ref) || remote.has(ref)) continue;
      await deleteRef(gitdir, ref, oid);
      this.log.info(`${ref} ${oid.slice(0, 8)} was never pushed to ${this.displayUrl} (interrupted); dropped from the local mirror`);
    }
  }

  /** isomorphic-git fetches only through a configured remote (its refspec); the URL in the config carries no credentials. */
  private async ensureRemoteConfig(gitdir: string): Promise<void> {
    const configured = await git.getConfig({ fs, gitdir, path: 'remote.origin.url' });
    if (configured !== this.displayUrl) await git.addRemote({ fs, gitdir, remote: 'origin', url: this.displayUrl, force: true });
  }

  /**
   * Pushes `ref` (already moved locally from `expected` to `next`). Only a ref that moved on the
   * server is a RefConflict; a refusal for any other reason (fsck, a hook, a rule) is a
   * PushRefused carrying the server's words, so that it is not mistaken for another writer.
   *
   * A push from a known value asks the server nothing first: the push names `expected` as the
   * value it replaces (operator/remote/replay-advertisement.ts), which the server checks under its
   * ref lock, so it is a compare-and-swap. The first push of a link, and one that creates a ref
   * (what the server already has decides what to send), read the server's real advertisement.
   */
  async publish(gitdir: string, ref: string, next: string, expected: string | null): Promise<void> {
    const known = this.lastListing;
    this.lastListing = undefined; // unless the push is accepted, the next refresh compares the mirror with the server
    await this.uploadLfsObjects(gitdir, ref, next, expected);
    const recorder = recordAdvertisement(this.rawHttp, 'git-receive-pack');
    const rendered = expected && this.receivePack ? { ...this.receivePack.template, body: renderReceivePackAdvertisement(ref, expected, this.receivePack.capabilities) } : undefined;
    const http = rendered ? replayAdvertisement(this.rawHttp, rendered) : recorder.http;
    try {
      const own = expected && this.receivePack ? await this.ownPush(gitdir, { ref, expected, next }, this.receivePack.capabilities, known) : undefined;
      if (own && !own.ok) throw await this.refusal(ref, expected, own.reason);
      if (!own) {
        let result;
        try {
          result = await git.push({ fs, http, gitdir, url: this.url, ref, remoteRef: ref, force: false, headers: this.headers() });
        } finally {
          this.rememberReceivePack(recorder.recorded());
        }
        if (!result.ok || result.refs[ref]?.ok === false) throw await this.refusal(ref, expected, result.refs[ref]?.error ?? result.error ?? 'rejected');
      }
    } catch (e) {
      // Whatever failed, the next push reads the server's real advertisement: a server whose
      // capabilities changed is never answered from a stale copy twice.
      if (rendered) this.receivePack = undefined;
      if (e instanceof FedgitError) throw e;
      const err = e as { code?: string; message?: string; data?: { reason?: string; prettyDetails?: string } };
      if (err.code === 'PushRejectedError') throw await this.refusal(ref, expected, err.data?.reason ?? err.message ?? 'rejected');
      if (err.code === 'GitPushError') throw await this.refusal(ref, expected, err.data?.prettyDetails ?? err.message ?? 'rejected');
      throw this.explain(e);
    }
    // Accepted as a compare-and-swap: the server's ref is `next` now, and the mirror's too. A
    // participant is not told of its own pushes, so without this its next refresh would list
    // the server only to find what it just wrote. Moves by others still come with a notification.
    if (known) this.lastListing = new Map(known).set(ref, next);
    this.log.debug(`pushed ${ref} ${next.slice(0, 8)} to ${this.displayUrl}`);
  }

  /**
   * A push from a known value written by fedgit (operator/git/pack-writer.ts,
   * operator/remote/receive-pack.ts): one request, objects deflated by node's zlib. Undefined
   * when it does not apply (the server cannot report the outcome, or the new commits do not
   * reach what the server holds within a few dozen commits): isomorphic-git's push then does it.
   */
  private async ownPush(gitdir: string, command: ReceivePackCommand, announced: string, known: ReadonlyMap<string, string> | undefined): Promise<ReceivePackReport | undefined> {
    const capabilities = requestedCapabilities(announced);
    if (!capabilities) return undefined;
    // A history it cannot walk (an object missing from the mirror) is left to isomorphic-git, which says what is wrong.
    const objects = await objectsToSend(gitdir, command.next, new Set([command.expected, ...(known?.values() ?? [])])).catch(() => undefined);
    if (!objects) return undefined;
    return sendReceivePack(this.rawHttp, this.url, this.headers(), receivePackRequest(command, capabilities, await writePack(gitdir, objects)));
  }

  private rememberReceivePack(recorded: RecordedAdvertisement | undefined): void {
    const capabilities = recorded && advertisedCapabilities(recorded.body);
    if (recorded && capabilities !== undefined) this.receivePack = { template: recorded, capabilities };
  }
}
