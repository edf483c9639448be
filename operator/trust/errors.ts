/** Failures of keys, key files and signed statements that users can act on. */
import { EXIT, FedgitError } from '../errors.js';

/** A public or private key that is not a usable Ed25519 key. Never carries key material beyond a short prefix. */
export class KeyInvalid extends FedgitError {
  static override readonly exit = EXIT.invalid;
  static override readonly fatal = true;
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('KEY_INVALID', message, data, options);
  }
}

/** A private key file that must not be used or written as asked: too open, already there, or not a file. */
export class KeyFileRefused extends FedgitError {
  static override readonly exit = EXIT.invalid;
  static override readonly fatal = true;
  constructor(message: string, data: { file: string } & Record<string, unknown>, options?: { cause?: unknown }) {
    super('KEY_FILE_REFUSED', message, data, options);
  }
}

/** A statement field that would make the signed text ambiguous (newline, space where none is allowed, bad number…). */
export class StatementInvalid extends FedgitError {
  constructor(message: string, data: { field: string } & Record<string, unknown>) {
    super('STATEMENT_INVALID', message, data);
  }
}
