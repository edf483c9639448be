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
 * reconcile read the same refs or newer ones.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { listRefs } from '../git/refs.js';

const READY_TIMEOUT_MS = 2_000;

export type RefWatcherOptions = { gitdirs: readonly string[]; onChange: () => void; pollMs?: number; recheckMs?: number };

export class RefWatcher {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  /** The refs as read before the last trigger. */
  private seen = '';
  private looking = false;
  private lookAgain = false;

  constructor(private readonly o: RefWatcherOptions) {}

  async start(): Promise<void> {
    const targets = this.o.gitdirs.flatMap((g) => [path.join(g, 'refs'), path.join(g, 'packed-refs')]);
    this.watcher = watch(targets, { ignoreInitial: true, ignored: (p) => p.endsWith('.lock') });
    const onEvent = () => {
      void this.look();
      setTimeout(() => void this.look(), this.o.recheckMs ?? 60).unref();
    };
    this.watcher.on('all', onEvent);
    this.seen = await this.readFingerprint();
    // The poll starts first and never depends on chokidar: it is the safety net if the watch is slow or deaf.
    this.poll = setInterval(() => void this.look(), this.o.pollMs ?? 1000);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, READY_TIMEOUT_MS);
      this.watcher!.once('ready', () => (clearTimeout(timer), resolve()));
    });
  }

  private async readFingerprint(): Promise<string> {
    const parts: string[] = [];
    for (const gitdir of this.o.gitdirs) {
      const refs = await listRefs(gitdir, 'refs/').catch(() => new Map<string, string>());
      parts.push(gitdir, ...[...refs].map(([r, o]) => `${r}=${o}`).sort());
    }
    return parts.join('\n');
  }

  /** Reads the refs and triggers when they moved since the last trigger; looks asked for during one are folded into one more. */
  private async look(): Promise<void> {
    if (this.looking) {
      this.lookAgain = true;
      return;
    }
    this.looking = true;
    try {
      do {
        this.lookAgain = false;
        const now = await this.readFingerprint();
        if (now !== this.seen) {
          this.seen = now;
          this.o.onChange();
        }
      } while (this.lookAgain);
    } finally {
      this.looking = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.poll);
    await this.watcher?.close();
  }
}
