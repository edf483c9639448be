/**
 * A Git LFS client for one repository on a server: the batch API
 * (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md) at `<repo URL>/info/lfs`,
 * with the basic transfer adapter (docs/api/basic-transfers.md): uploads stream from
 * `lfs/objects` with a PUT, downloads stream into it (verified) with a GET, and an upload is
 * confirmed by the server's `verify` action when it asks for one.
 *
 * The participant's credentials go only to the repository's own origin; an href elsewhere (a
 * storage service) gets only the `header` map the server handed out with it.
 */
import type http from 'node:http';
import { FedgitError, LfsObjectMissing } from '../errors.js';
import type { Log } from '../contracts.js';
import { escapeUntrusted } from '../text/untrusted.js';
import type { LfsPointer } from '../lfs/pointer.js';
import { openLfsObject, receiveLfsObject } from '../lfs/object-store.js';
import { HttpRequestFailed, basicAuthorization, displayUrl, type HttpAuth } from './http-client.js';
import { lfsExchange, readSmallBody } from './lfs-http.js';
import { parseBatchResponse, type LfsAction, type LfsBatchObject } from './lfs-batch-response.js';

export const LFS_MEDIA_TYPE = 'application/vnd.git-lfs+json';

/** The LFS server refused, or answered what the batch API does not allow. */
export class LfsTransferFailed extends FedgitError {
  constructor(url: string, why: string, data: Record<string, unknown> = {}) {
    super('LFS_TRANSFER_FAILED', `${url}: Git LFS: ${why}`, { url, ...data });
  }
}

/** Wrong or missing credentials for the LFS API (HTTP 401/403). */
export class LfsDenied extends FedgitError {
  constructor(url: string, status: number) {
    super('LFS_DENIED', `${url}: the Git LFS server refused access (HTTP ${status}); check this participant's user and token`, { url, status });
  }
}

/**
 * A failure to talk to the LFS server (network, credentials, a server error), as opposed to what
 * a checkpoint is (damaged, missing): retried later, never held against the commit being read.
 */
export const isLfsTransportFailure = (e: unknown): boolean => e instanceof HttpRequestFailed || e instanceof LfsDenied || e instanceof LfsTransferFailed;

export class LfsClient {
  private readonly endpoint: string;
  private readonly shown: string;

  constructor(repoUrl: string, private readonly auth: HttpAuth | undefined, private readonly log: Log) {
    const u = new URL(repoUrl);
    u.username = u.password = '';
    this.endpoint = `${u.toString().replace(/\/+$/, '')}/info/lfs`;
    this.shown = displayUrl(this.endpoint);
  }

  /** Uploads the objects the server lacks (it says which); every one must be in `gitdir`'s store. */
  async upload(gitdir: string, pointers: readonly LfsPointer[], ref: string): Promise<void> {
    if (pointers.length === 0) return;
    for (const o of await this.batch('upload', pointers, ref)) {
      if (o.error) throw new LfsTransferFailed(this.shown, `the server will not take object ${o.oid}: ${o.error.code} ${escapeUntrusted(o.error.message, 300)}`, { oid: o.oid });
      const upload = o.actions?.upload;
      if (!upload) continue; // the server has it already
      await this.put(gitdir, o, upload);
      if (o.actions?.verify) await this.verify(o, o.actions.verify);
      this.log.debug(`uploaded LFS object ${o.oid.slice(0, 12)} (${o.size} bytes) to ${this.shown}`);
    }
  }

  /** Downloads one object into `gitdir`'s store, checking its size and SHA-256 on the way. */
  async download(gitdir: string, pointer: LfsPointer, source: string): Promise<void> {
    const [o] = await this.batch('download', [pointer]);
    if (o!.error?.code === 404) throw new LfsObjectMissing(`${source}: LFS object ${pointer.oid} is not on ${this.shown} (${escapeUntrusted(o!.error.message, 200)}); a retention policy may have pruned it (docs/lfs.md)`, { oid: pointer.oid });
    if (o!.error) throw new LfsTransferFailed(this.shown, `object ${pointer.oid}: ${o!.error.code} ${escapeUntrusted(o!.error.message, 300)}`, { oid: pointer.oid });
    const action = o!.actions?.download;
    if (!action) throw new LfsTransferFailed(this.shown, `the batch response gives no download action for ${pointer.oid}`, { oid: pointer.oid });
    const res = await lfsExchange({ method: 'GET', url: action.href, headers: { accept: 'application/octet-stream', ...this.headersFor(action) } });
    await this.expectOk(res, 'GET', action.href);
    await receiveLfsObject(gitdir, pointer, res as AsyncIterable<Buffer>, displayUrl(action.href));
  }

  private async batch(operation: 'upload' | 'download', pointers: readonly LfsPointer[], ref?: string): Promise<LfsBatchObject[]> {
    const body = Buffer.from(JSON.stringify({
      operation, transfers: ['basic'], ...(ref ? { ref: { name: ref } } : {}), objects: pointers.map((p) => ({ oid: p.oid, size: p.size })), hash_algo: 'sha256',
    }));
    const url = `${this.endpoint}/objects/batch`;
    const res = await lfsExchange({ method: 'POST', url, headers: { accept: LFS_MEDIA_TYPE, 'content-type': LFS_MEDIA_TYPE, ...this.ownAuth() }, body });
    await this.expectOk(res, 'POST', url);
    return parseBatchResponse(await readSmallBody(res), pointers, (why) => new LfsTransferFailed(this.shown, `batch ${operation}: ${why}`));
  }

  private async put(gitdir: string, o: LfsBatchObject, action: LfsAction): Promise<void> {
    const res = await lfsExchange({ method: 'PUT', url: action.href, headers: { 'content-type': 'application/octet-stream', ...this.headersFor(action) }, body: openLfsObject(gitdir, o.oid), contentLength: o.size });
    await this.expectOk(res, 'PUT', action.href);
    res.resume();
  }

  private async verify(o: LfsBatchObject, action: LfsAction): Promise<void> {
    const body = Buffer.from(JSON.stringify({ oid: o.oid, size: o.size }));
    const res = await lfsExchange({ method: 'POST', url: action.href, headers: { accept: LFS_MEDIA_TYPE, 'content-type': LFS_MEDIA_TYPE, ...this.headersFor(action) }, body });
    await this.expectOk(res, 'POST', action.href);
    res.resume();
  }

  private ownAuth(): Record<string, string> {
    return this.auth ? { authorization: basicAuthorization(this.auth) } : {};
  }

  /** The action's own headers; our credentials only when it names none and the href is on the repository's origin. */
  private headersFor(action: LfsAction): Record<string, string> {
    const headers = Object.fromEntries(Object.entries(action.header).map(([k, v]) => [k.toLowerCase(), v]));
    if (!headers.authorization && new URL(action.href).origin === new URL(this.endpoint).origin) Object.assign(headers, this.ownAuth());
    return headers;
  }

  private async expectOk(res: http.IncomingMessage, method: string, url: string): Promise<void> {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return;
    const text = await readSmallBody(res, 64 * 1024).catch(() => '');
    if (status === 401 || status === 403) throw new LfsDenied(this.shown, status);
    let message = text;
    try {
      message = String((JSON.parse(text) as { message?: unknown }).message ?? text);
    } catch {
      /* not JSON: the text itself */
    }
    throw new LfsTransferFailed(displayUrl(url), `${method} answered HTTP ${status}${message.trim() ? `: ${escapeUntrusted(message.trim(), 300)}` : ''}`, { status });
  }
}
