/**
 * The aggregator's "round k: n/N valid updates, waiting for …" line. It changes with every update
 * that arrives: with 100 edges, a line per update was most of the log and a measurable share of
 * the aggregator's CPU per round. A wait is said at once when it begins, then at most once per
 * interval; a change held back is said when the interval ends (the caller asks to be woken then),
 * so a wait that lasts is always in the log as it stands.
 */
export class WaitLine {
  private said = '';
  private saidAtMs = -Infinity;
  private waiting = false;

  constructor(private readonly intervalMs = 1000) {}

  /** Whether to log `line` now; when it is held back, when to offer it again. */
  offer(line: string, nowMs: number): { readonly say: boolean; readonly againAtMs?: number } {
    if (line === this.said) return { say: false };
    if (this.waiting && nowMs - this.saidAtMs < this.intervalMs) return { say: false, againAtMs: this.saidAtMs + this.intervalMs };
    this.said = line;
    this.saidAtMs = nowMs;
    this.waiting = true;
    return { say: true };
  }

  /** The wait is over (the aggregator acted): the next one is said at once. */
  ended(): void {
    this.waiting = false;
  }
}
