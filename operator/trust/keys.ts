/**
 * Ed25519 keys: every edge and the aggregator holds one private key (a PEM
 * file, mode 0600, outside any repository); the plan lists the public keys as
 * `ed25519:<base64 of the raw 32 bytes>`. Private key material never appears
 * in an error message, a return value meant for display, or a log.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { KeyFileRefused, KeyInvalid } from './errors.js';

export const KEY_PREFIX = 'ed25519:';
const RAW_KEY_BYTES = 32;
/** Base64 of 32 bytes: 43 characters and one `=`. */
const PUBLIC_KEY_PATTERN = /^ed25519:([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$/;
/** How much of a bad value an error message may show. */
const SHOWN_CHARS = 12;

export type KeyPair = { readonly publicKey: string; readonly privateKeyPem: string };

/** The first characters of a value, for error messages: enough to recognise it, never a whole key. */
export function excerpt(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > SHOWN_CHARS ? `'${clean.slice(0, SHOWN_CHARS)}…'` : `'${clean}'`;
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new KeyInvalid(`not an Ed25519 key (${key.asymmetricKeyType ?? key.type})`);
  return Buffer.from(jwk.x, 'base64url');
}

/** `ed25519:<base64>` of a public key (or of the public half of a private key). */
export function renderPublicKey(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return KEY_PREFIX + rawPublicKey(publicKey).toString('base64');
}

export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: renderPublicKey(publicKey), privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/** A plan's `ed25519:<base64>` value as a key object; a clear error showing only the value's first characters. */
export function parsePublicKey(text: string): KeyObject {
  if (typeof text !== 'string') throw new KeyInvalid(`public key must be a string 'ed25519:<base64>', got ${text === null ? 'null' : typeof text}`);
  const m = PUBLIC_KEY_PATTERN.exec(text.trim());
  if (!m) {
    const why = !text.trim().startsWith(KEY_PREFIX) ? `does not start with '${KEY_PREFIX}'` : `is not base64 of ${RAW_KEY_BYTES} bytes`;
    throw new KeyInvalid(`public key ${excerpt(text)} ${why} (expected 'ed25519:' and 44 base64 characters, as printed by fedgit keygen)`, { value: excerpt(text) });
  }
  const raw = Buffer.from(m[1]!, 'base64');
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch (cause) {
    throw new KeyInvalid(`public key ${excerpt(text)} is not a valid Ed25519 key`, { value: excerpt(text) }, { cause });
  }
}

/** A PEM text as an Ed25519 private key. `source` names where it came from for the error message; the text itself is never shown. */
export function parsePrivateKey(pem: string, source = 'private key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new KeyInvalid(`${source} is not an unencrypted PEM private key (make one with fedgit keygen)`, { source }, { cause: cause instanceof Error ? new Error(cause.message) : undefined });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyInvalid(`${source} is a ${key.asymmetricKeyType ?? 'unknown'} key; fedgit needs an Ed25519 key (make one with fedgit keygen)`, { source, type: key.asymmetricKeyType });
  }
  return key;
}

/** The plan value (`ed25519:<base64>`) that belongs to a private key. */
export function publicKeyOf(privateKey: KeyObject): string {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new KeyInvalid('publicKeyOf needs an Ed25519 private key');
  return renderPublicKey(privateKey);
}

/** `sha256:` and the first 16 hex digits of the SHA-256 of the raw public key: for display and logs, never for checking. */
export function fingerprint(publicKey: string | KeyObject): string {
  const key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  return `sha256:${createHash('sha256').update(rawPublicKey(key.type === 'private' ? createPublicKey(key) : key)).digest('hex').slice(0, 16)}`;
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException).code;

/** Creates `file` with mode 0600 (its folder with 0700 if missing); refuses to overwrite anything. `check` refuses a PEM of the wrong kind. */
export async function writePrivateKey(file: string, pem: string, check: (pem: string, source: string) => unknown = parsePrivateKey): Promise<void> {
  check(pem, 'the key to write');
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  let handle;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (e) {
    if (errno(e) === 'EEXIST') throw new KeyFileRefused(`${file} already exists; fedgit never overwrites a key file (move it away or choose another path)`, { file });
    throw new KeyFileRefused(`${file}: cannot create: ${errno(e) ?? (e as Error).message}`, { file }, { cause: e });
  }
  try {
    await handle.chmod(0o600);
    await handle.writeFile(pem.endsWith('\n') ? pem : `${pem}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Reads an Ed25519 private key from a PEM file. Refuses a file that group or
 * others may read or write (POSIX), and anything that is not an Ed25519 key.
 */
export async function readPrivateKey(file: string): Promise<KeyObject> {
  return parsePrivateKey(await readSecretPem(file), file);
}

/** The text of a private key file, refused when group or others may read or write it (POSIX) or when it is too large to be a key. */
export async function readSecretPem(file: string): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    throw new KeyFileRefused(`${file}: cannot read private key: ${errno(e) ?? (e as Error).message}`, { file }, { cause: e });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new KeyFileRefused(`${file} is not a regular file`, { file });
    const mode = stat.mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new KeyFileRefused(`${file} has mode 0${mode.toString(8).padStart(3, '0')}: a private key must not be accessible to group or others; run \`chmod 600 ${file}\``, { file, mode });
    }
    if (stat.size > 64 * 1024) throw new KeyInvalid(`${file} is ${stat.size} bytes, too large to be a private key`, { file });
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}
