/**
 * Runs a reconcile function one at a time. A trigger asks for another look and
 * may name the repository locations that moved (a local ref watch knows them);
 * a trigger that names none means anything may have moved. Triggers during a
 * run coalesce into one more run, which is given every location they named, or
 * none when one of them named none. A failing reconcile is retried with
 * backoff, as a look at everything.
 */
import type { Log } from '../contracts.js';
import type { ReconcileOutcome } from '../reconcile/reconciler.js';
import { escapeUntrusted } from '../text/untrusted.js';

const MAX_BACKOFF_MS = 10_000;

export class ReconcileLoop {
  private running = false;
  private pending = false;
  /** The locations named since the last run started; `'any'` once a trigger named none. */
  private moved: Set<string> | 'any' = 'any';
  private stopped = false;
  private failures = 0;
  private lastFailure = '';
  private retryAtMs = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  /** `reconcile(moved)`: `moved` names the locations that moved since the last run, or is undefined when anything may have. */
  constructor(private readonly reconcile: (moved?: ReadonlySet<string>) => Promise<ReconcileOutcome>, private readonly log: Log) {}

  trigger(moved?: Iterable<string>): void {
    if (this.stopped) return;
    if (!moved) this.moved = 'any';
    else if (this.moved !== 'any') for (const location of moved) this.moved.add(location);
    this.pending = true;
    // After a failure, wait for the back-off timer rather than hammering a server that is down.
    if (Date.now() < this.retryAtMs) return;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.pending && !this.stopped) {
      this.pending = false;
      const moved = this.moved;
      this.moved = new Set();
      try {
        const outcome = await this.reconcile(moved === 'any' ? undefined : moved);
        this.failures = 0;
        this.lastFailure = '';
        this.retryAtMs = 0;
        if (outcome?.wakeAtMs !== undefined) this.wakeAt(outcome.wakeAtMs);
        if (outcome?.lookAgain) this.lookAtEverything();
      } catch (e) {
        this.failures++;
        const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.failures, 7));
        const message = escapeUntrusted((e as Error).message.split('\n')[0] ?? '', 500);
        // The same failure again is logged at attempts 1, 2, 4, 8, …: a server down for a day
        // leaves a few dozen lines, not thousands.
        const repeated = message === this.lastFailure;
        if (!repeated || (this.failures & (this.failures - 1)) === 0) {
          this.log.error(`reconcile failed (attempt ${this.failures}), retrying in ${delay} ms: ${message}`, { code: (e as { code?: string }).code, stack: (e as Error).stack });
        }
        this.lastFailure = message;
        this.retryAtMs = Date.now() + delay;
        this.pending = false;
        this.moved = 'any';
        this.wakeAt(this.retryAtMs);
      }
    }
    this.running = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private lookAtEverything(): void {
    this.pending = true;
    this.moved = 'any';
  }

  private wakeAt(ms: number): void {
    clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => {
      this.retryAtMs = Math.min(this.retryAtMs, Date.now());
      this.trigger();
    }, Math.max(0, ms - Date.now()) + 5);
  }

  /** Resolves when no reconcile is running. */
  idle(): Promise<void> {
    return this.running ? new Promise((resolve) => this.idleWaiters.push(resolve)) : Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.wakeTimer);
    await this.idle();
  }
}
