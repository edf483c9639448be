/**
 * X25519 key-agreement keys for secure aggregation (docs/secure-aggregation.md): every edge
 * holds one private key (a PEM file, mode 0600, outside any repository, beside its Ed25519
 * signing key); the plan lists the public halves as `x25519:<base64 of the raw 32 bytes>`.
 * As for signing keys, private key material never reaches an error, a log or a commit.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { KeyInvalid } from '../trust/errors.js';
import { excerpt, readSecretPem } from '../trust/keys.js';

export const AGREEMENT_KEY_PREFIX = 'x25519:';
const PATTERN = /^x25519:([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$/;

export type AgreementKeyPair = { readonly publicKey: string; readonly privateKeyPem: string };

/** `x25519:<base64>` of a public key (or of the public half of a private key). */
export function renderAgreementKey(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'X25519' || typeof jwk.x !== 'string') throw new KeyInvalid(`not an X25519 key (${publicKey.asymmetricKeyType ?? publicKey.type})`);
  return AGREEMENT_KEY_PREFIX + Buffer.from(jwk.x, 'base64url').toString('base64');
}

export function generateAgreementKeyPair(): AgreementKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: renderAgreementKey(publicKey), privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/** A plan's `x25519:<base64>` value as a key object; the error shows only the value's first characters. */
export function parseAgreementKey(text: string): KeyObject {
  const m = typeof text === 'string' ? PATTERN.exec(text.trim()) : null;
  if (!m) {
    const why = typeof text !== 'string' ? 'is not a string' : !text.trim().startsWith(AGREEMENT_KEY_PREFIX) ? `does not start with '${AGREEMENT_KEY_PREFIX}'` : 'is not base64 of 32 bytes';
    throw new KeyInvalid(`agreement key ${typeof text === 'string' ? excerpt(text) : ''} ${why} (expected 'x25519:' and 44 base64 characters, as printed by fedgit keygen --agreement-out)`, { value: typeof text === 'string' ? excerpt(text) : typeof text });
  }
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(m[1]!, 'base64').toString('base64url') }, format: 'jwk' });
}

/** A PEM text as an X25519 private key; `source` names it in the error, the text never appears. */
export function parseAgreementPrivateKey(pem: string, source = 'agreement key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new KeyInvalid(`${source} is not an unencrypted PEM private key (make one with fedgit keygen --agreement-out)`, { source }, { cause: cause instanceof Error ? new Error(cause.message) : undefined });
  }
  if (key.asymmetricKeyType !== 'x25519') {
    throw new KeyInvalid(`${source} is a ${key.asymmetricKeyType ?? 'unknown'} key; secure aggregation needs an X25519 key (make one with fedgit keygen --agreement-out)`, { source, type: key.asymmetricKeyType });
  }
  return key;
}

/** Reads an X25519 private key file (mode 0600 required, as for signing keys). */
export async function readAgreementPrivateKey(file: string): Promise<KeyObject> {
  return parseAgreementPrivateKey(await readSecretPem(file), file);
}
