/**
 * Log-space arithmetic for the RDP accountant: sums and differences of numbers held as their
 * logarithms, and log(erfc(x)) with full relative accuracy far into the tail, where erfc(x)
 * itself underflows (erfc(27) < 1e-300). The accountant's sums have terms that span hundreds
 * of orders of magnitude; adding them as plain doubles would overflow or lose them.
 */

/** log(e^a + e^b); −Infinity stands for 0. */
export function logAdd(logX: number, logY: number): number {
  const low = Math.min(logX, logY);
  const high = Math.max(logX, logY);
  if (low === -Infinity) return high;
  return Math.log1p(Math.exp(low - high)) + high;
}

/** log(e^a − e^b) for a ≥ b; −Infinity stands for 0. */
export function logSub(logX: number, logY: number): number {
  if (logX < logY) throw new Error(`logSub: the difference would be negative (${logX} < ${logY})`);
  if (logY === -Infinity) return logX;
  if (logX === logY) return -Infinity;
  const scaled = Math.expm1(logX - logY);
  // e^(a−b) overflows only when e^b is negligible next to e^a.
  return Number.isFinite(scaled) ? Math.log(scaled) + logY : logX;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** erf(x) for 0 ≤ x < 2 by its series of positive terms (no cancellation): 2/√π e^(−x²) Σ 2ⁿ x^(2n+1) / (2n+1)!!. */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

/**
 * log(erfc(x)) for x ≥ 2 by the continued fraction erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))
 * (Abramowitz & Stegun 7.1.14), evaluated with the modified Lentz method.
 */
function logErfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = f;
  let d = 0;
  for (let n = 1; n < 10_000; n++) {
    const a = n / 2;
    d = x + a * d;
    d = Math.abs(d) < tiny ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const step = c * d;
    f *= step;
    if (Math.abs(step - 1) < 1e-16) break;
  }
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

/** log(erfc(x)) for every finite x, accurate to a few ulps of relative error in erfc. */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x >= 2) return logErfcContinuedFraction(x);
  if (x >= 0) return Math.log1p(-erfSeries(x));
  // erfc(x) = 2 − erfc(−x); erfc(−x) ≤ 1 here, so no precision is lost.
  const tail = -x >= 2 ? Math.exp(logErfcContinuedFraction(-x)) : 1 - erfSeries(-x);
  return Math.log(2 - tail);
}
