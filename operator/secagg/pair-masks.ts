/**
 * Pairwise masks (Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine
 * Learning", CCS 2017, §4, without the secret sharing): edges i and j agree on a seed
 * s_ij = HKDF-SHA256(X25519(sk_i, pk_j), salt = plan id, info = round and the two names), the
 * same from either side and different every round, and expand it into a mask with AES-256-CTR
 * (key s_ij, zero IV, keystream only): Node's own primitives, deterministic on any machine.
 */
import { createCipheriv, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import os from 'node:os';
import { KeyInvalid } from '../trust/errors.js';

export const SEED_BYTES = 32;
const LITTLE_ENDIAN = os.endianness() === 'LE';

/** The round's pair seed of `self` and `peer`: the same bytes from either side. */
export function pairSeed(ownPrivateKey: KeyObject, peerPublicKey: KeyObject, o: { planId: string; round: number; self: string; peer: string }): Uint8Array {
  const shared = diffieHellman({ privateKey: ownPrivateKey, publicKey: peerPublicKey });
  // A low-order peer key gives the all-zero secret, which anyone could compute.
  if (shared.every((b) => b === 0)) throw new KeyInvalid(`the agreement key of ${o.peer} is a low-order point; it cannot mask anything`, { peer: o.peer });
  const [a, b] = o.self < o.peer ? [o.self, o.peer] : [o.peer, o.self];
  return new Uint8Array(hkdfSync('sha256', shared, Buffer.from(o.planId, 'utf8'), Buffer.from(`fedgit secure aggregation v1\nround ${o.round}\npair ${a} ${b}`, 'utf8'), SEED_BYTES));
}

/** `wordCount` 32-bit words of the AES-256-CTR keystream of `seed` (two words per masked value). */
export function maskWords(seed: Uint8Array, wordCount: number): Uint32Array {
  if (seed.length !== SEED_BYTES) throw new RangeError(`a pair seed is ${SEED_BYTES} bytes, got ${seed.length}`);
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(wordCount * 4)); // CTR is a stream cipher: final() adds nothing
  if (LITTLE_ENDIAN) return stream.byteOffset % 4 === 0 ? new Uint32Array(stream.buffer, stream.byteOffset, wordCount) : new Uint32Array(Uint8Array.from(stream).buffer);
  return Uint32Array.from({ length: wordCount }, (_, i) => stream.readUInt32LE(i * 4));
}
