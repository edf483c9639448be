/**
 * The noise of a DP merge, specified exactly so that whoever holds a round's seed recomputes it
 * bit for bit: uniforms from SHA-256 in counter mode, normals by Box–Muller in float64.
 *
 * Block i (i = 0, 1, …) is SHA-256(seed ‖ "fedgit-dp-noise/v1" ‖ i as 8 bytes big-endian); each
 * block gives four 64-bit words, read big-endian; a word's top 53 bits k give u = (k + 1) / 2⁵³,
 * in (0, 1]. Consecutive uniforms (u₁, u₂) give two normals √(−2 ln u₁)·cos(2πu₂) and
 * √(−2 ln u₁)·sin(2πu₂), in that order. Math.log, cos and sin are V8's fdlibm ports, so the
 * values are the same on every machine running the same Node.js major version.
 *
 * The seed of round r is HMAC-SHA256(aggregator secret, "fedgit-dp-seed/v1\n<plan id>\n<r>");
 * the merge commits only SHA-256(seed): publishing the seed would let anyone subtract the noise.
 */
import { createHash, createHmac } from 'node:crypto';

const STREAM_LABEL = Buffer.from('fedgit-dp-noise/v1', 'utf8');
const TWO_POW_53 = 2 ** 53;

export const SEED_BYTES = 32;

export function deriveNoiseSeed(secret: Uint8Array, planId: string, round: number): Buffer {
  return createHmac('sha256', secret).update(`fedgit-dp-seed/v1\n${planId}\n${round}`, 'utf8').digest();
}

/** `sha256:<hex>` of the seed: what the merge commits instead of the seed. */
export function noiseCommitment(seed: Uint8Array): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

function* uniforms(seed: Uint8Array): Generator<number> {
  const counter = Buffer.alloc(8);
  for (let block = 0n; ; block++) {
    counter.writeBigUInt64BE(block);
    const digest = createHash('sha256').update(seed).update(STREAM_LABEL).update(counter).digest();
    for (let w = 0; w < 4; w++) {
      const top53 = digest.readBigUInt64BE(w * 8) >> 11n;
      yield (Number(top53) + 1) / TWO_POW_53;
    }
  }
}

/** `count` independent N(0, 1) values in float64 from `seed`. */
export function standardNormals(seed: Uint8Array, count: number): Float64Array {
  return normalStream(seed)(count);
}

/**
 * The same values as `standardNormals`, drawn a part at a time: successive calls continue the one
 * stream (a pair's second normal carries over a call that ends between the two), so a merge can
 * draw each tensor's noise when it reaches it instead of the whole model's at once.
 */
export function normalStream(seed: Uint8Array): (count: number) => Float64Array {
  if (seed.length !== SEED_BYTES) throw new RangeError(`a noise seed has ${SEED_BYTES} bytes, got ${seed.length}`);
  const u = uniforms(seed);
  let pending: number | undefined;
  return (count) => {
    const out = new Float64Array(count);
    let i = 0;
    if (pending !== undefined && count > 0) {
      out[i++] = pending;
      pending = undefined;
    }
    for (; i < count; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(u.next().value as number));
      const angle = 2 * Math.PI * (u.next().value as number);
      out[i] = radius * Math.cos(angle);
      if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
      else pending = radius * Math.sin(angle);
    }
    return out;
  };
}
