/**
 * The inverse question of the accountant: which noise multiplier lets a plan run all its rounds
 * within a budget. Used to write DP plans (experiment/compare-privacy.ts); the plan itself still
 * states z, and the aggregator accounts with exactly that z.
 */
import { requireDelta, requireTargetEpsilon, roundsWithin, type AccountingOptions } from './rdp-accountant.js';

/**
 * The smallest z with `significantDigits` significant digits such that `rounds` rounds with every
 * client in every round (q = 1) spend at most `targetEpsilon` at `delta`. Rounded up, never down,
 * so the plan's rounds always fit.
 */
export function noiseMultiplierFor(rounds: number, targetEpsilon: number, delta: number, options: AccountingOptions & { significantDigits?: number } = {}): number {
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be an integer ≥ 1, got ${rounds}`);
  requireTargetEpsilon(targetEpsilon);
  requireDelta(delta);
  const digits = options.significantDigits ?? 3;
  const fits = (z: number) => roundsWithin(targetEpsilon, delta, z, 1, options) >= rounds;
  let low = 1e-3;
  let high = 1;
  while (!fits(high)) {
    low = high;
    high *= 2;
    if (high > 1e6) throw new RangeError(`no noise multiplier up to 1e6 fits ${rounds} rounds within ε = ${targetEpsilon} at δ = ${delta}`);
  }
  for (let i = 0; i < 60; i++) {
    const middle = (low + high) / 2;
    if (fits(middle)) high = middle;
    else low = middle;
  }
  const step = 10 ** (Math.floor(Math.log10(high)) - (digits - 1));
  let z = Number((Math.ceil(high / step) * step).toPrecision(digits));
  if (!fits(z)) z = Number((z + step).toPrecision(digits));
  return z;
}
