/**
 * The shape both operators have (controller-runtime's Reconciler): a
 * participant process opens one, reconciles it on every notification, and
 * stops it. Everything a reconcile wants from the loop comes back in its
 * result — "look again", "wake me at", "the plan is complete", "this
 * participant cannot go on" — never through a side channel.
 */

/**
 * What one reconcile asks for. A reconcile that changed nothing asks for nothing: the next look
 * comes from a notification.
 * - `lookAgain`: it changed git (its own push is not announced to it), or stopped work to restart it;
 * - `wakeAtMs`: look again at this time (a deadline, a retry back-off);
 * - `done`: the current plan is complete (`--exit-when-done` exits on it);
 * - `fatal`: this participant cannot work as configured (an error whose class is fatal); it stops.
 */
export type ReconcileOutcome = {
  readonly lookAgain?: boolean;
  readonly wakeAtMs?: number;
  readonly done?: boolean;
  readonly fatal?: Error;
} | void;

export interface Reconciler {
  /** Opens the repositories it needs; fails with NotFound naming a missing one. */
  open(): Promise<void>;
  /**
   * One observe → decide → act pass. Running it twice on the same state does nothing new.
   * `moved`: the watched locations whose refs moved since the last pass (one may skip reading the
   * others again); undefined: anything may have moved.
   */
  reconcile(moved?: ReadonlySet<string>): Promise<ReconcileOutcome>;
  /** The repository locations whose changes call for a reconcile (local ones are watched, remote ones polled). */
  watchedLocations(): Promise<readonly string[]>;
  /** Stops background work (training) and releases what it holds. */
  stop(): Promise<void>;
}
