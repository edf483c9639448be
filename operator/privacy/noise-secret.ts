/**
 * The aggregator's DP noise secret: 32 random bytes in a file only its owner may read, created at
 * first use. Each round's noise seed is derived from it (gaussian-noise.ts); the secret itself
 * never leaves this module — no log, commit or error message carries it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ConfigInvalid } from '../errors.js';

const SECRET_BYTES = 32;

/** The secret's file cannot be used as it is (missing, readable by others, wrong size): its owner must fix it. */
export class NoiseSecretRefused extends ConfigInvalid {
  constructor(message: string, file: string) {
    super(message, { file });
  }
}

/** Where the secret lives when the aggregator is not given a file: a per-federation file under the user's state folder, never inside a repository. */
export function defaultNoiseSecretFile(globalLocation: string): string {
  const stateHome = process.env.XDG_STATE_HOME || path.join(homedir(), '.local', 'state');
  const id = createHash('sha256').update(globalLocation).digest('hex').slice(0, 16);
  return path.join(stateHome, 'fedgit', `dp-noise-${id}.key`);
}

/** Reads the secret, creating it (mode 0600) if the file does not exist; refuses a file others can read or of the wrong size. */
export async function readOrCreateNoiseSecret(file: string): Promise<Buffer> {
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, randomBytes(SECRET_BYTES), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new NoiseSecretRefused(`cannot create the DP noise secret ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, file);
  }
  return readNoiseSecret(file);
}

/** Reads an existing secret (for an audit); refuses a missing file, one others can read, or one of the wrong size. */
export async function readNoiseSecret(file: string): Promise<Buffer> {
  const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw new NoiseSecretRefused(`cannot read the DP noise secret ${file}: ${e.code ?? 'error'}`, file);
  });
  if ((info.mode & 0o077) !== 0) throw new NoiseSecretRefused(`the DP noise secret ${file} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`, file);
  const secret = await readFile(file);
  if (secret.length !== SECRET_BYTES) throw new NoiseSecretRefused(`the DP noise secret ${file} must hold ${SECRET_BYTES} bytes`, file);
  return secret;
}
