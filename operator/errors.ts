/**
 * Errors users can act on: one class per failure. Each class declares, in its
 * own body and nowhere else:
 * - `code`: a stable name for logs and tests (never parsed to decide anything);
 * - `exit`: the status the CLI exits with (README, "Exit status");
 * - `fatal`: whether a participant that meets it stops instead of retrying —
 *   waiting cannot help, a person must change its configuration or data.
 * Code decides with `instanceof` and these two declarations, never with a
 * string. The CLI's single catch (operator/cli.ts, `runCli`) maps class → exit
 * status; the edge operator stops on `fatal`.
 */

/** Exit statuses of the CLI (README, "Exit status"). */
export const EXIT = { ok: 0, failed: 1, usage: 2, invalid: 3 } as const;
export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

export abstract class FedgitError extends Error {
  /** The CLI's exit status for this class: bad input a user must fix exits 2 or 3, other failures 1. */
  static readonly exit: ExitStatus = EXIT.failed;
  /** Whether a participant stops (rather than retries) when this error reaches it. */
  static readonly fatal: boolean = false;

  readonly code: string;
  readonly data: Readonly<Record<string, unknown>>;

  get exitCode(): ExitStatus {
    return (this.constructor as typeof FedgitError).exit;
  }

  get fatal(): boolean {
    return (this.constructor as typeof FedgitError).fatal;
  }

  constructor(code: string, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
  }
}

/** A command line that cannot be run as given: unknown command, missing or malformed flag. */
export class UsageError extends FedgitError {
  static override readonly exit = EXIT.usage;
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('USAGE', message, data, options);
  }
}

/**
 * A plan that breaks its schema or does not fit the apps and strategies. Not fatal to a running
 * participant: it waits for the next plan commit.
 */
export class PlanInvalid extends FedgitError {
  static override readonly exit = EXIT.invalid;
  constructor(message: string, data: { file: string; line?: number; field?: string }) {
    super('PLAN_INVALID', message, data);
  }
}

/** A participant's own configuration is wrong (a field, a missing folder the app needs): it stops. */
export class ConfigInvalid extends FedgitError {
  static override readonly exit = EXIT.invalid;
  static override readonly fatal = true;
  constructor(message: string, data: { file?: string; line?: number; field?: string } & Record<string, unknown>) {
    super('CONFIG_INVALID', message, data);
  }
}

/** An edge's local data cannot be used (unreadable volume, bad labels): the edge stops. */
export class DataInvalid extends FedgitError {
  static override readonly exit = EXIT.invalid;
  static override readonly fatal = true;
  constructor(message: string, data: { file: string } & Record<string, unknown>, options?: { cause?: unknown }) {
    super('DATA_INVALID', message, data, options);
  }
}

/** A plan or command names an app or strategy this build does not have. */
export class UnknownComponent extends FedgitError {
  static override readonly exit = EXIT.invalid;
  constructor(kind: 'app' | 'strategy', id: string, known: readonly string[]) {
    super(kind === 'app' ? 'APP_UNKNOWN' : 'STRATEGY_UNKNOWN', `unknown ${kind} '${id}' (known: ${known.join(', ')})`, { kind, id });
  }
}

/** A ref name or ref value that is not what git allows (a bug or a damaged repository). */
export class RefInvalid extends FedgitError {
  constructor(message: string, data: { ref: string }) {
    super('REF_INVALID', message, data);
  }
}

/** A ref file that exists but holds no object id. */
export class RefUnreadable extends FedgitError {
  constructor(message: string, data: { ref: string; gitdir: string }) {
    super('REF_UNREADABLE', message, data);
  }
}

/** Another writer holds a ref's lock file; retry later. */
export class RefLocked extends FedgitError {
  constructor(message: string, data: { lockFile: string }) {
    super('REF_LOCKED', message, data);
  }
}

/** A compare-and-swap lost: the ref moved since it was read. */
export class RefConflict extends FedgitError {
  constructor(ref: string, expected: string | null, actual: string | null) {
    super('REF_CONFLICT', `ref ${ref} moved: expected ${expected ?? '(none)'}, found ${actual ?? '(none)'}`, { ref, expected, actual });
  }
}

export class CheckpointCorrupt extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('CHECKPOINT_CORRUPT', message, data, options);
  }
}

export class NotFound extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('NOT_FOUND', message, data);
  }
}

/**
 * A checkpoint's Git LFS object is in neither the repository's own store nor, for a mirror, on its
 * server: a retention policy (`fedgit prune`, or a server admin's) may have removed it. Restoring
 * the file under its oid makes the checkpoint readable again (docs/lfs.md, "Retention").
 */
export class LfsObjectMissing extends FedgitError {
  constructor(message: string, data: { oid: string } & Record<string, unknown>) {
    super('LFS_OBJECT_MISSING', message, data);
  }
}

/** An app (built-in or external command) failed; the edge retries with back-off. */
export class AppFailed extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('APP_FAILED', message, data, options);
  }
}

/** Work stopped on request (the global model moved, or the participant is stopping). */
export class Aborted extends FedgitError {
  constructor(reason = 'aborted') {
    super('ABORTED', reason);
  }
}

/** `fedgit run` gave up: the plan did not finish within --timeout. */
export class RunTimedOut extends FedgitError {
  constructor(message: string, data: { plan: string; timeoutMs: number }) {
    super('RUN_TIMEOUT', message, data);
  }
}

/** A git server's API refused a `fedgit setup --apply` request. */
export class SetupFailed extends FedgitError {
  constructor(message: string, data: { status: number }) {
    super('SETUP_FAILED', message, data);
  }
}
