/**
 * Turns ref changes in local bare repositories into triggers.
 *
 * Every folder under `refs/`, and the repository folder itself (for
 * `packed-refs`), is watched with `fs.watch`; an event that can mean a ref
 * moved only asks for a look at that repository's refs, and a poll every `pollMs` looks at all of
 * them as a safety net (a network file system raises no events for writes
 * made on other machines). A trigger only asks for a reconcile; the reconcile
 * reads the refs itself, so a missed event costs nothing but time.
 *
 * A new folder raises an event in its (watched) parent. The look that event
 * asks for first walks the repository's folders and watches every one not yet
 * watched, then reads the refs: `fs.watch` is in place when the walk returns,
 * so a ref written in a new folder is either read by this look or raises an
 * event for the next. (chokidar, used here before, discovers nested folders on
 * its own after telling it is ready: 1 run in about 30 lost a participant's
 * watch of one repository for the whole run, every wake-up for it then came
 * from the poll.) Only an event naming something other than a file (a folder
 * came or went), the start, a failed watch and a move found by the poll
 * rather than an event walk the folders: a ref write, the common event, costs
 * one `lstat`.
 *
 * Every look triggers only when the refs differ from what the last trigger
 * was given, and names the repositories whose refs moved: a ref write raises
 * several events (lock created, written, renamed), and a reconcile per event
 * would be most of a participant's work in a round. Skipping is safe because
 * each state in `seen` was read before the reconcile its trigger started, so
 * that reconcile read the same refs or newer ones.
 */
import { watch, readdirSync, lstatSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { listRefs } from '../git/refs.js';
import type { Log } from '../contracts.js';

/** The safety-net poll's period when none is given. */
export const DEFAULT_POLL_MS = 1000;

export type RefWatcherOptions = {
  gitdirs: readonly string[];
  /** `moved`: the repositories (of `gitdirs`) whose refs differ from what the last trigger was given. */
  onChange: (moved: readonly string[]) => void;
  pollMs?: number;
  /** A folder that exists could not be watched (no inotify watch left, no permission): changes there are seen by the poll only. */
  onWatchFailed?: (folder: string, error: Error) => void;
  /** `fs.watch`, or a stand-in that fails the way a machine out of inotify watches does (tests). */
  watch?: typeof watch;
};

export class RefWatcher {
  private poll: NodeJS.Timeout | undefined;
  /** Each watched folder, by path; its repository is the one whose event it raises. */
  private readonly folders = new Map<string, FSWatcher>();
  /** Each repository's refs as read before the last trigger. */
  private readonly seen = new Map<string, string>();
  /** Repositories to look at; a look in progress takes them all before it reads. */
  private readonly due = new Set<string>();
  /** Repositories whose folders the next look walks first (a folder may have appeared or gone). */
  private readonly toWalk = new Set<string>();
  /** Repositories the poll asked about: found moved, their folders are walked (an event may have been lost). */
  private readonly polled = new Set<string>();
  private looking = false;
  private stopped = false;

  constructor(private readonly o: RefWatcherOptions) {}

  async start(): Promise<void> {
    for (const gitdir of this.o.gitdirs) {
      this.watchFolders(gitdir);
      this.seen.set(gitdir, await readFingerprint(gitdir));
    }
    if (this.stopped) return;
    this.poll = setInterval(() => void this.look(this.o.gitdirs, { polled: true }), this.o.pollMs ?? DEFAULT_POLL_MS);
  }

  /** The folders watched now (for diagnostics and tests). */
  watchedFolders(): string[] {
    return [...this.folders.keys()].sort();
  }

  /** Watches the repository folder and each folder under its `refs/` not watched yet; forgets those gone. */
  private watchFolders(gitdir: string): void {
    const present = new Set([gitdir, ...foldersUnder(path.join(gitdir, 'refs'))]);
    for (const [folder, watcher] of this.folders) {
      if (isInside(folder, gitdir) && !present.has(folder)) this.unwatch(folder, watcher);
    }
    for (const folder of present) {
      if (this.folders.has(folder)) continue;
      const watcher = this.watchFolder(folder, (file) => {
        if (!raisesLook(folder === gitdir, file)) return;
        if (!namesAFile(folder, file)) this.toWalk.add(gitdir);
        void this.look([gitdir]);
      });
      if (!watcher) continue;
      watcher.on('error', () => {
        this.unwatch(folder, watcher);
        this.toWalk.add(gitdir);
      });
      this.folders.set(folder, watcher);
    }
  }

  /** An `fs.watch` of one folder (not recursive), or null when it cannot be watched: the poll still looks. */
  private watchFolder(folder: string, onEvent: (file: string | null) => void): FSWatcher | null {
    try {
      return (this.o.watch ?? watch)(folder, { persistent: false }, (_event, file) => onEvent(file === null ? null : String(file)));
    } catch (e) {
      // A folder removed since the walk found it is no failure; anything else leaves the poll alone to see it.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.o.onWatchFailed?.(folder, e as Error);
      return null;
    }
  }

  private unwatch(folder: string, watcher: FSWatcher): void {
    watcher.close();
    if (this.folders.get(folder) === watcher) this.folders.delete(folder);
  }

  /** Reads the refs of `gitdirs` and triggers once, naming those that moved since the last trigger; asks made during a look join it. */
  private async look(gitdirs: readonly string[], { polled = false } = {}): Promise<void> {
    if (this.stopped) return;
    for (const g of gitdirs) this.due.add(g);
    if (polled) for (const g of gitdirs) this.polled.add(g);
    if (this.looking) return;
    this.looking = true;
    try {
      while (this.due.size > 0 && !this.stopped) {
        const batch = [...this.due];
        this.due.clear();
        const moved: string[] = [];
        for (const gitdir of batch) {
          // Before start has read a repository's refs there is nothing to compare with (start reads them next).
          if (!this.seen.has(gitdir)) continue;
          if (this.toWalk.delete(gitdir)) this.watchFolders(gitdir);
          const now = await readFingerprint(gitdir);
          const changed = now !== this.seen.get(gitdir);
          // A move the poll found before any event did may be in a folder whose watch is missing.
          if (this.polled.delete(gitdir) && changed) this.watchFolders(gitdir);
          if (changed) moved.push(gitdir);
          this.seen.set(gitdir, now);
        }
        // A look that was reading when the watcher stopped triggers nothing.
        if (moved.length > 0 && !this.stopped) this.o.onChange(moved);
      }
    } finally {
      this.looking = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    for (const [folder, watcher] of this.folders) this.unwatch(folder, watcher);
  }
}

/**
 * Whether an event can mean a ref moved. Git writes a ref (and `packed-refs`) as a `.lock` file
 * renamed into place, so only the rename's arrival under the ref's name matters; the lock's own
 * events (created, written, closed, renamed away) would each cost a look. In the repository
 * folder only `packed-refs` and `refs` itself concern refs. No name: look, to be safe.
 */
function raisesLook(inRepositoryFolder: boolean, file: string | null): boolean {
  if (file === null) return true;
  if (file.endsWith('.lock')) return false;
  return !inRepositoryFolder || file === 'packed-refs' || file === 'refs';
}

/**
 * An `onWatchFailed` that warns once per process: without the watch every wake-up waits for the
 * poll, and an operator should know why.
 */
export function warnOnceOfWatchFailure(log: Pick<Log, 'warn'>, pollMs: number): (folder: string, e: Error) => void {
  let warned = false;
  return (folder, e) => {
    if (warned) return;
    warned = true;
    const code = (e as NodeJS.ErrnoException).code ?? e.message;
    const hint = code === 'ENOSPC' ? ' (the inotify watch limit is reached: raise fs.inotify.max_user_watches)' : '';
    log.warn(`cannot watch ${folder} for ref changes: ${code}${hint}; changes there are seen by the poll every ${pollMs} ms`, { folder, code });
  };
}

/** Whether an event's name is a file now (a ref or `packed-refs` written); anything else may be a folder that came or went. */
function namesAFile(folder: string, file: string | null): boolean {
  if (file === null) return false;
  try {
    return lstatSync(path.join(folder, file), { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
}

/** `root` and every folder below it; none when `root` does not exist. */
function foldersUnder(root: string): string[] {
  let entries;
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    return [];
  }
  return [root, ...entries.filter((e) => e.isDirectory()).flatMap((e) => foldersUnder(path.join(root, e.name)))];
}

const isInside = (folder: string, gitdir: string) => folder === gitdir || folder.startsWith(gitdir + path.sep);

async function readFingerprint(gitdir: string): Promise<string> {
  const refs = await listRefs(gitdir, 'refs/').catch(() => new Map<string, string>());
  return [...refs].map(([r, o]) => `${r}=${o}`).sort().join('\n');
}
