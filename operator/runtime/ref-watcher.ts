/**
 * Turns ref changes in local bare repositories into triggers.
 *
 * chokidar on a single ref file can go deaf after quick renames and drops a
 * second change within 50 ms, so we watch the refs/ directories and
 * packed-refs, re-check shortly after every event, and poll the refs every
 * `pollMs` as a safety net. A trigger only asks for a reconcile; the
 * reconcile reads the refs itself, so a missed event costs nothing.
 *
 * Every look (event, re-check, poll) reads the refs and triggers only when
 * they differ from what the last trigger was given: a ref write raises several
 * events (lock created, renamed), and a reconcile per event would be most of a
 * participant's work in a round. Skipping is safe because each state in
 * `seen` was read before the reconcile its trigger started, so that
 * reconcile read the same refs or newer ones. An event re-reads only the
 * repository it came from.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { listRefs } from '../git/refs.js';

const READY_TIMEOUT_MS = 2_000;
const SETTLING_LOOKS_MS = [0, 100, 300, 1000, 2000];

export type RefWatcherOptions = { gitdirs: readonly string[]; onChange: () => void; pollMs?: number; recheckMs?: number };

export class RefWatcher {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  /** Each repository's refs as read before the last trigger. */
  private readonly seen = new Map<string, string>();
  /** Repositories to look at; a look in progress takes them all before it reads. */
  private readonly due = new Set<string>();
  private looking = false;
  /** Looks scheduled for later (settling looks, re-checks after an event), cleared by stop. */
  private readonly pendingLooks = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly o: RefWatcherOptions) {}

  async start(): Promise<void> {
    const targets = this.o.gitdirs.flatMap((g) => [path.join(g, 'refs'), path.join(g, 'packed-refs')]);
    this.watcher = watch(targets, { ignoreInitial: true, ignored: (p) => p.endsWith('.lock') });
    this.watcher.on('all', (_event, changed) => {
      const gitdirs = this.repositoryOf(changed);
      void this.look(gitdirs);
      this.lookLater(gitdirs, this.o.recheckMs ?? 60);
    });
    for (const gitdir of this.o.gitdirs) this.seen.set(gitdir, await readFingerprint(gitdir));
    if (this.stopped) return;
    // The poll starts first and never depends on chokidar: it is the safety net if the watch is slow or deaf.
    this.poll = setInterval(() => void this.look(this.o.gitdirs), this.o.pollMs ?? 1000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, READY_TIMEOUT_MS);
      this.watcher!.once('ready', () => (clearTimeout(timer), resolve()));
    });
    if (this.stopped) return;
    // chokidar's 'ready' comes before the watches of nested folders are all in place (measured under
    // load: a ref written just after it raised its event 170 ms later, or none). A ref that moves
    // in that window is caught by these looks, not left to the poll.
    for (const ms of SETTLING_LOOKS_MS) this.lookLater(this.o.gitdirs, ms);
  }

  private lookLater(gitdirs: readonly string[], ms: number): void {
    const timer = setTimeout(() => {
      this.pendingLooks.delete(timer);
      void this.look(gitdirs);
    }, ms).unref();
    this.pendingLooks.add(timer);
  }

  /** The repository a changed path belongs to (all of them if none claims it). */
  private repositoryOf(changed: string): readonly string[] {
    const owner = this.o.gitdirs.find((g) => changed === path.join(g, 'packed-refs') || changed.startsWith(path.join(g, 'refs') + path.sep));
    return owner ? [owner] : this.o.gitdirs;
  }

  /** Reads the refs of `gitdirs` and triggers once if any moved since the last trigger; asks made during a look join it. */
  private async look(gitdirs: readonly string[]): Promise<void> {
    if (this.stopped) return;
    for (const g of gitdirs) this.due.add(g);
    if (this.looking) return;
    this.looking = true;
    try {
      while (this.due.size > 0 && !this.stopped) {
        const batch = [...this.due];
        this.due.clear();
        let moved = false;
        for (const gitdir of batch) {
          const now = await readFingerprint(gitdir);
          if (now !== this.seen.get(gitdir)) moved = true;
          this.seen.set(gitdir, now);
        }
        // A look that was reading when the watcher stopped triggers nothing.
        if (moved && !this.stopped) this.o.onChange();
      }
    } finally {
      this.looking = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    for (const timer of this.pendingLooks) clearTimeout(timer);
    this.pendingLooks.clear();
    await this.watcher?.close();
  }
}

async function readFingerprint(gitdir: string): Promise<string> {
  const refs = await listRefs(gitdir, 'refs/').catch(() => new Map<string, string>());
  return [...refs].map(([r, o]) => `${r}=${o}`).sort().join('\n');
}
