/**
 * Fixed-point arithmetic modulo 2^64 for secure aggregation. A value v becomes the integer
 * q = round(v · 2^fractionalBits), held as two 32-bit words (low first, as a little-endian U64);
 * sums are taken modulo 2^64, so masks cancel exactly whatever their size.
 *
 * The bound: every encoded |q| is at most MAX_ENCODED = 2^43 (larger ones are clipped to it and
 * counted), and a plan has at most 1,000 edges < 2^10, so any sum of honest updates stays below
 * 2^53 in magnitude: exact in float64 when decoded, and far from the 2^63 where it would wrap.
 */
export const MAX_ENCODED = 2 ** 43;
const WORD = 2 ** 32;

/**
 * Writes round(values[k] · scale) into words[2(offset + k)], [2(offset + k) + 1]; returns how
 * many values were beyond ±MAX_ENCODED and clipped to it (non-finite values are refused).
 */
export function encodeInto(words: Uint32Array, offset: number, values: ArrayLike<number>, scale: number): number {
  let clipped = 0;
  for (let k = 0; k < values.length; k++) {
    let q = Math.round(values[k]! * scale);
    if (!Number.isFinite(q)) throw new RangeError(`value ${values[k]} at index ${k} cannot be encoded`);
    if (Math.abs(q) > MAX_ENCODED) {
      q = Math.sign(q) * MAX_ENCODED;
      clipped++;
    }
    const hi = Math.floor(q / WORD);
    words[2 * (offset + k)] = q - hi * WORD;
    words[2 * (offset + k) + 1] = hi; // ToUint32: a negative high word wraps modulo 2^32
  }
  return clipped;
}

/** acc ← acc + sign · other (mod 2^64), word pair by word pair; `other` may be longer than `acc`'s span from `at`. */
export function addWords(acc: Uint32Array, other: Uint32Array, sign: 1 | -1): void {
  if (other.length < acc.length) throw new RangeError(`adding ${other.length} words to ${acc.length}`);
  for (let i = 0; i < acc.length; i += 2) {
    if (sign === 1) {
      const lo = acc[i]! + other[i]!;
      acc[i] = lo;
      acc[i + 1] = acc[i + 1]! + other[i + 1]! + (lo >= WORD ? 1 : 0);
    } else {
      const lo = acc[i]! - other[i]!;
      acc[i] = lo;
      acc[i + 1] = acc[i + 1]! - other[i + 1]! - (lo < 0 ? 1 : 0);
    }
  }
}

/** The signed integer held in word pair `index` (two's complement over 64 bits). */
export function decodeAt(words: Uint32Array, index: number): number {
  return (words[2 * index + 1]! | 0) * WORD + words[2 * index]!;
}
