/**
 * Turns ref changes in local bare repositories into triggers.
 *
 * chokidar on a single ref file can go deaf after quick renames and drops a
 * second change within 50 ms, so we watch the refs/ directories and
 * packed-refs, re-check shortly after every event, and poll the refs every
 * `pollMs` as a safety net. A trigger only asks for a reconcile; the
 * reconcile reads the refs itself, so a missed or duplicate event costs nothing.
 */
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { listRefs } from '../git/refs.js';

const READY_TIMEOUT_MS = 2_000;

export type RefWatcherOptions = { gitdirs: readonly string[]; onChange: () => void; pollMs?: number; recheckMs?: number };

export class RefWatcher {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private fingerprint = '';
  private polling = false;

  constructor(private readonly o: RefWatcherOptions) {}

  async start(): Promise<void> {
    const targets = this.o.gitdirs.flatMap((g) => [path.join(g, 'refs'), path.join(g, 'packed-refs')]);
    this.watcher = watch(targets, { ignoreInitial: true, ignored: (p) => p.endsWith('.lock') });
    const onEvent = () => {
      this.o.onChange();
      setTimeout(() => this.o.onChange(), this.o.recheckMs ?? 60).unref();
    };
    this.watcher.on('all', onEvent);
    this.fingerprint = await this.readFingerprint();
    // The poll starts first and never depends on chokidar: it is the safety net if the watch is slow or deaf.
    this.poll = setInterval(() => void this.checkPoll(), this.o.pollMs ?? 1000);
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

  private async checkPoll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const next = await this.readFingerprint();
      if (next !== this.fingerprint) {
        this.fingerprint = next;
        this.o.onChange();
      }
    } finally {
      this.polling = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.poll);
    await this.watcher?.close();
  }
}
