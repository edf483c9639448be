/** User errors of `fedgit experiment` and `fedgit synth` (the CLI maps code USAGE to exit 2). */
import { FedgitError } from '../operator/errors.js';

export class ExperimentUsage extends FedgitError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export class ExperimentFailed extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('EXPERIMENT_FAILED', message, data, options);
  }
}

/** Weights that the app cannot use: another architecture, or tensors of other names or shapes. */
export class WeightsMismatch extends FedgitError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('WEIGHTS_MISMATCH', message, data);
  }
}
