/** Errors of `fedgit experiment`, `fedgit synth` and `fedgit evaluate`; each declares its exit status (operator/errors.ts). */
import { EXIT, FedgitError, UsageError } from '../operator/errors.js';

/** A flag or argument the experiment commands cannot use (exit 2). */
export class ExperimentUsage extends UsageError {}

/** The federated arm or another step of the experiment failed (exit 1). */
export class ExperimentFailed extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('EXPERIMENT_FAILED', message, data, options);
  }
}

/** Weights that the app cannot use: another architecture, or tensors of other names or shapes (exit 3). */
export class WeightsMismatch extends FedgitError {
  static override readonly exit = EXIT.invalid;
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('WEIGHTS_MISMATCH', message, data);
  }
}
