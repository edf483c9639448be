/**
 * Errors users can act on. Each has a stable `code` and structured `data`;
 * the CLI maps them to one clear line and an exit code.
 */
/** Exit statuses of the CLI (README, "Commands"). */
export const EXIT = { failed: 1, usage: 2, invalid: 3 } as const;

export class FedgitError extends Error {
  readonly code: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** The CLI's exit status for this error: bad input a user must fix exits 3, other failures 1. */
  get exitCode(): number {
    return EXIT.failed;
  }

  constructor(code: string, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
  }
}

export class PlanInvalid extends FedgitError {
  override get exitCode(): number {
    return EXIT.invalid;
  }
  constructor(message: string, data: { file: string; line?: number; field?: string }) {
    super('PLAN_INVALID', message, data);
  }
}

export class ConfigInvalid extends FedgitError {
  override get exitCode(): number {
    return EXIT.invalid;
  }
  constructor(message: string, data: { file: string; line?: number; field?: string }) {
    super('CONFIG_INVALID', message, data);
  }
}

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

export class AppFailed extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('APP_FAILED', message, data, options);
  }
}

export class DataInvalid extends FedgitError {
  override get exitCode(): number {
    return EXIT.invalid;
  }
  constructor(message: string, data: { file: string } & Record<string, unknown>, options?: { cause?: unknown }) {
    super('DATA_INVALID', message, data, options);
  }
}

export class Aborted extends FedgitError {
  constructor(reason = 'aborted') {
    super('ABORTED', reason);
  }
}

export function isFedgitError(e: unknown, code?: string): e is FedgitError {
  return e instanceof FedgitError && (code === undefined || e.code === code);
}
