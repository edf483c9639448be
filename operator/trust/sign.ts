/**
 * Ed25519 signatures over statements (see statements.ts), written as
 * `ed25519:<base64 of the 64-byte signature>`. Checking never throws: a
 * malformed signature or key is simply not valid, and `verificationFailure`
 * says why for error messages.
 */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { KEY_PREFIX, excerpt, parsePublicKey } from './keys.js';
import { KeyInvalid } from './errors.js';

/** Base64 of 64 bytes: 86 characters, the last one carrying 2 bits, then `==`. */
const SIGNATURE_PATTERN = /^ed25519:([A-Za-z0-9+/]{85}[AQgw]==)$/;

export function sign(statement: string, privateKey: KeyObject): string {
  if (typeof statement !== 'string') throw new TypeError('statement must be a string');
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new KeyInvalid('signing needs an Ed25519 private key');
  return KEY_PREFIX + cryptoSign(null, Buffer.from(statement, 'utf8'), privateKey).toString('base64');
}

/** Why `signature` is not a valid signature of `statement` by `publicKey`, or `undefined` when it is. Never throws. */
export function verificationFailure(statement: string, signature: unknown, publicKey: KeyObject | string): string | undefined {
  if (typeof statement !== 'string') return 'statement is not a string';
  if (typeof signature !== 'string') return signature === undefined ? 'no signature' : `signature is a ${typeof signature}, not a string`;
  if (!signature.startsWith(KEY_PREFIX)) return `signature ${excerpt(signature)} does not start with '${KEY_PREFIX}'`;
  const m = SIGNATURE_PATTERN.exec(signature);
  if (!m) return `signature ${excerpt(signature)} is not base64 of 64 bytes`;
  let key: KeyObject;
  try {
    key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  } catch (e) {
    return (e as Error).message;
  }
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') return 'the key to check against is not an Ed25519 public key';
  try {
    return cryptoVerify(null, Buffer.from(statement, 'utf8'), key, Buffer.from(m[1]!, 'base64')) ? undefined : 'signature does not match the statement and key';
  } catch (e) {
    return `signature cannot be checked: ${(e as Error).message}`;
  }
}

export function verify(statement: string, signature: unknown, publicKey: KeyObject | string): boolean {
  return verificationFailure(statement, signature, publicKey) === undefined;
}
