/** Seeded random numbers for the synthetic cohort; never Math.random, so a seed gives identical bytes. */

import { mulberry32 } from '../random.js';

export type Random = () => number;

export { mulberry32 };

/** A 32-bit seed for item `index` of a run seeded with `seed` (splitmix-style mixing). */
export function deriveSeed(seed: number, index: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export const uniform = (random: Random, lo: number, hi: number): number => lo + (hi - lo) * random();
export const randomInt = (random: Random, lo: number, hiInclusive: number): number => lo + Math.floor(random() * (hiInclusive - lo + 1));

export const GAUSSIAN_TABLE_BITS = 16;

/**
 * 2^16 standard normal samples (Box–Muller from a fixed seed), so voxel noise
 * costs one xorshift and one lookup instead of a log, a sqrt and a cosine.
 */
export const GAUSSIAN_TABLE: Float32Array = (() => {
  const random = mulberry32(0x5eed);
  const table = new Float32Array(1 << GAUSSIAN_TABLE_BITS);
  for (let n = 0; n < table.length; n += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const theta = 2 * Math.PI * random();
    table[n] = r * Math.cos(theta);
    table[n + 1] = r * Math.sin(theta);
  }
  return table;
})();
