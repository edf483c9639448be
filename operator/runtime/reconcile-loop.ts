/**
 * Runs a reconcile function one at a time. A trigger carries no data: it only
 * asks for another look; triggers during a run coalesce into one more run.
 * A failing reconcile is retried with backoff.
 */
import type { Log } from '../contracts.js';
import type { ReconcileOutcome } from '../reconcile/reconciler.js';
import { escapeUntrusted } from '../text/untrusted.js';

const MAX_BACKOFF_MS = 10_000;

export class ReconcileLoop {
  private running = false;
  private pending = false;
  private stopped = false;
  private failures = 0;
  private lastFailure = '';
  private retryAtMs = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly reconcile: () => Promise<ReconcileOutcome>, private readonly log: Log) {}

  trigger(): void {
    if (this.stopped) return;
    this.pending = true;
    // After a failure, wait for the back-off timer rather than hammering a server that is down.
    if (Date.now() < this.retryAtMs) return;
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.pending && !this.stopped) {
      this.pending = false;
      try {
        const outcome = await this.reconcile();
        this.failures = 0;
        this.lastFailure = '';
        this.retryAtMs = 0;
        if (outcome?.wakeAtMs !== undefined) this.wakeAt(outcome.wakeAtMs);
        if (outcome?.lookAgain) this.pending = true;
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
        this.wakeAt(this.retryAtMs);
      }
    }
    this.running = false;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
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
