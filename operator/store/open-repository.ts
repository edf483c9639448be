/**
 * Opens a repository by location: a folder on this disk, or an http(s) URL on
 * a git server, which is then worked on through a local bare mirror.
 */
import path from 'node:path';
import type { HttpClient } from 'isomorphic-git';
import { NotFound } from '../errors.js';
import { Repository, type PushedRef } from '../git/repository.js';
import { sweepStaleTempObjects } from '../git/objects.js';
import { sweepStaleLfsTemp } from '../lfs/object-store.js';
import { createHttpClient, displayUrl } from '../remote/http-client.js';
import { RemoteLink, type RemoteAuth } from '../remote/remote-link.js';
import type { Log } from '../contracts.js';
import { SILENT } from '../runtime/silent-log.js';

export const isRemoteLocation = (location: string): boolean => /^https?:\/\//i.test(location);

export type RepositoryOpener = {
  /** The repository, or null when a local folder holds none. */
  open(location: string): Promise<Repository | null>;
  /** The repository, or NotFound naming `what` (e.g. "the global repository"). */
  require(location: string, what: string): Promise<Repository>;
  /** The repository if this machine has it already (a local folder, or a mirror made before), else null; never makes a mirror. */
  openExisting(location: string): Promise<Repository | null>;
  /**
   * A server may have moved: the next refresh of the mirrors of `repository` (a push event's
   * repository name or clone URL), or of every mirror when it names none of them, asks the server.
   */
  /** `pushed`: what the push event naming `repository` says moved (followed without a listing when it can be). */
  markRemotesStale(repository?: string, pushed?: PushedRef): void;
};

export type OpenerOptions = {
  readonly cacheDir?: string;
  readonly auth?: RemoteAuth;
  readonly http?: HttpClient;
  readonly log?: Log;
  /** Mirrors ask their server only after `markRemotesStale()` (operator/remote/remote-link.ts); default: at every refresh. */
  readonly listOnlyWhenStale?: boolean;
};

/** A folder name for a URL's mirror: host and path, nothing else (never credentials). */
export function mirrorName(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname}`.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').replace(/(\.git)?$/, '.git');
}

export function createOpener(o: OpenerOptions = {}): RepositoryOpener {
  const cache = new Map<string, Repository>();
  const log: Log = o.log ?? SILENT;
  const mirrorDir = (location: string) => path.join(o.cacheDir ?? path.resolve('.fedgit-cache'), mirrorName(location));
  const open = async (location: string): Promise<Repository | null> => {
    const known = cache.get(location);
    if (known) return known;
    let repo: Repository;
    if (isRemoteLocation(location)) {
      const mirror = await Repository.ensureBare(mirrorDir(location));
      const client = o.http ?? defaultHttpClient();
      repo = new Repository(mirror.gitdir, new RemoteLink(location, client, o.auth, log, { listOnlyWhenStale: o.listOnlyWhenStale ?? false }));
    } else {
      if (!(await Repository.isRepository(location))) return null;
      repo = new Repository(location);
    }
    // Once per process and repository: what killed writers left behind (tmp_obj_* files, lfs/tmp).
    await sweepStaleTempObjects(repo.gitdir);
    await sweepStaleLfsTemp(repo.gitdir);
    cache.set(location, repo);
    return repo;
  };
  return {
    open,
    markRemotesStale(repository, pushed) {
      const mirrors = [...cache].filter(([location, repo]) => repo.remote && isRemoteLocation(location));
      const named = repository === undefined ? [] : mirrors.filter(([location]) => servesRepository(location, repository));
      if (named.length === 1) named[0]![1].remote!.markStale(pushed);
      else for (const [, repo] of named.length ? named : mirrors) repo.remote!.markStale();
    },
    async openExisting(location) {
      if (isRemoteLocation(location) && !cache.has(location) && !(await Repository.isRepository(mirrorDir(location)))) return null;
      return open(location);
    },
    async require(location, what) {
      const repo = await open(location);
      if (!repo) throw new NotFound(`${what}: no git repository at ${isRemoteLocation(location) ? displayUrl(location) : location}`, { location });
      return repo;
    },
  };
}

/** One HTTP client per process: keep-alive agents without the idle-socket timeout that aborts long transfers (operator/remote/http-client.ts). */
let sharedClient: HttpClient | undefined;
function defaultHttpClient(): HttpClient {
  sharedClient ??= createHttpClient();
  return sharedClient;
}

/**
 * Whether a push event's repository (Gitea/GitHub `full_name` like `owner/name`, GitLab
 * `path_with_namespace`, or a clone URL) is the one at `location`: the URL's path ends with it.
 */
export function servesRepository(location: string, repository: string): boolean {
  const trimmed = (p: string) => p.toLowerCase().replace(/\/+$/, '').replace(/\.git$/, '');
  const pathOf = (u: string) => {
    try {
      return trimmed(new URL(u).pathname);
    } catch {
      return undefined;
    }
  };
  const path = pathOf(location);
  if (path === undefined) return false;
  const wanted = isRemoteLocation(repository) ? pathOf(repository) : `/${trimmed(repository).replace(/^\/+/, '')}`;
  return wanted !== undefined && wanted !== '/' && (path === wanted || path.endsWith(wanted));
}
