/**
 * Rényi-DP accountant for client-level DP-FedAvg (McMahan, Ramage, Talwar & Zhang, "Learning
 * Differentially Private Recurrent Language Models", ICLR 2018): each round, every client's
 * update is clipped to L2 norm C and the aggregator adds N(0, (zC)²) to their sum, so one
 * round is a Gaussian mechanism with noise multiplier z — or, when clients are Poisson-sampled
 * with probability q, a Sampled Gaussian Mechanism.
 *
 * - Gaussian mechanism: ε_RDP(α) = α / (2z²) (Mironov, "Rényi Differential Privacy", CSF 2017, Prop. 7).
 * - Sampled Gaussian Mechanism: ε_RDP(α) = log(A_α) / (α − 1), A_α computed in log space, by
 *   the binomial expansion for integer α and by the two-sided series with erfc for fractional α
 *   (Mironov, Talwar & Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism",
 *   arXiv:1908.10530, 2019, Sec. 3.3) — the computation of TensorFlow Privacy's rdp_accountant,
 *   Google's dp_accounting and Opacus.
 * - Composition: RDP adds per order (Mironov 2017, Prop. 1), so T identical rounds cost T·ε_RDP(α).
 * - Conversion to (ε, δ): 'balle2020' (default), ε = min_α ε_RDP(α) + log((α−1)/α) − (log δ + log α)/(α − 1)
 *   (Balle, Barthe, Gaboardi, Hsu & Sato, "Hypothesis Testing Interpretations and Rényi Differential
 *   Privacy", AISTATS 2020, Thm. 21; Canonne, Kamath & Steinke, "The Discrete Gaussian for
 *   Differential Privacy", NeurIPS 2020, Prop. 12), with the KL bound δ ≤ √(1 − e^(−ε_RDP)) giving ε = 0
 *   when it applies, exactly as dp_accounting does; or 'mironov2017', ε = min_α ε_RDP(α) + log(1/δ)/(α − 1)
 *   (Mironov 2017, Prop. 3). Both are valid upper bounds; at every order above 1.01 the default is the smaller.
 */
import { logAdd, logErfc, logSub } from './log-math.js';

export type Conversion = 'balle2020' | 'mironov2017';

/** The grid of TensorFlow Privacy's compute_dp_sgd_privacy_lib: 1.25 … 4.5, 5 … 63, 128, 256, 512. */
export const TF_PRIVACY_ORDERS: readonly number[] = Object.freeze([
  1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5,
  ...Array.from({ length: 59 }, (_, i) => i + 5),
  128, 256, 512,
]);

/** Opacus's RDPAccountant.DEFAULT_ALPHAS: 1.1, 1.2, … 10.9, then 12 … 63. */
export const OPACUS_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => i + 12),
]);

/**
 * The default grid: the union of both libraries' grids plus 1024. More orders only make the
 * minimum over orders smaller (every order gives a valid bound), never larger.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze(
  [...new Set([...TF_PRIVACY_ORDERS, ...OPACUS_ORDERS, 1024])].sort((a, b) => a - b),
);

export type AccountingOptions = {
  /** The RDP orders α (> 1) to optimise over; DEFAULT_ORDERS when absent. */
  readonly orders?: readonly number[];
  /** How RDP becomes (ε, δ); 'balle2020' when absent. */
  readonly conversion?: Conversion;
};

export type PrivacySpent = {
  readonly epsilon: number;
  readonly delta: number;
  /** The order α at which the minimum is reached. */
  readonly order: number;
};

const describe = (value: unknown) => (typeof value === 'number' ? String(value) : typeof value);

function requireNumber(name: string, value: number, ok: (v: number) => boolean, wanted: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new RangeError(`${name} must be ${wanted}, got ${describe(value)}`);
  }
}

export const requireNoiseMultiplier = (z: number) => requireNumber('noiseMultiplier', z, (v) => v > 0, 'a finite number > 0');
export const requireSamplingRate = (q: number) => requireNumber('samplingRate', q, (v) => v > 0 && v <= 1, 'a finite number in (0, 1]');
export const requireDelta = (delta: number) => requireNumber('delta', delta, (v) => v > 0 && v < 1, 'a finite number in (0, 1)');
export const requireTargetEpsilon = (e: number) => requireNumber('targetEpsilon', e, (v) => v > 0, 'a finite number > 0');
const requireRounds = (rounds: number) =>
  requireNumber('rounds', rounds, (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');

function requireOrders(orders: readonly number[]): void {
  if (!Array.isArray(orders) || orders.length === 0) throw new RangeError('orders must be a non-empty array of numbers > 1');
  orders.forEach((order, i) => requireNumber(`orders[${i}]`, order, (v) => v > 1, 'a finite number > 1'));
}

function requireConversion(conversion: Conversion): void {
  if (conversion !== 'balle2020' && conversion !== 'mironov2017') {
    throw new RangeError(`conversion must be 'balle2020' or 'mironov2017', got ${describe(conversion)}`);
  }
}

/** RDP of the Gaussian mechanism at order α, noise σ = z · sensitivity: α / (2z²). */
export function gaussianRdp(noiseMultiplier: number, order: number): number {
  requireNoiseMultiplier(noiseMultiplier);
  requireNumber('order', order, (v) => v > 1, 'a finite number > 1');
  return order / (2 * noiseMultiplier * noiseMultiplier);
}

/** log A_α for integer α: log Σ_i C(α,i) q^i (1−q)^(α−i) e^((i²−i)/(2σ²)). */
function logAForIntegerOrder(q: number, sigma: number, order: number): number {
  const logQ = Math.log(q);
  const log1MinusQ = Math.log1p(-q);
  let logBinomial = 0;
  let logA = -Infinity;
  for (let i = 0; i <= order; i++) {
    if (i > 0) logBinomial += Math.log(order - i + 1) - Math.log(i);
    const term = logBinomial + i * logQ + (order - i) * log1MinusQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, term);
  }
  return logA;
}

/**
 * log A_α for fractional α: A_α splits at z₀ = σ² log(1/q − 1) + 1/2 into two integrals, each a
 * series over the generalised binomial coefficients C(α, i), whose sign alternates past i > α.
 * The series stops when both new terms fall below e^(−30) (as in the reference implementations).
 */
function logAForFractionalOrder(q: number, sigma: number, order: number): number {
  const logQ = Math.log(q);
  const log1MinusQ = Math.log1p(-q);
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const twoSigmaSquared = 2 * sigma * sigma;
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  let logAbsBinomial = 0;
  let binomialPositive = true;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const factor = (order - i + 1) / i;
      logAbsBinomial += Math.log(Math.abs(factor));
      if (factor < 0) binomialPositive = !binomialPositive;
    }
    const j = order - i;
    const logT0 = logAbsBinomial + i * logQ + j * log1MinusQ;
    const logT1 = logAbsBinomial + j * logQ + i * log1MinusQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / twoSigmaSquared + logE0;
    const logS1 = logT1 + (j * j - j) / twoSigmaSquared + logE1;
    if (binomialPositive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/**
 * RDP at order α of one Sampled Gaussian Mechanism round: each client is included with
 * probability q (Poisson sampling), noise σ = z · sensitivity. q = 1 is the plain Gaussian.
 */
export function sampledGaussianRdp(samplingRate: number, noiseMultiplier: number, order: number): number {
  requireSamplingRate(samplingRate);
  requireNoiseMultiplier(noiseMultiplier);
  requireNumber('order', order, (v) => v > 1, 'a finite number > 1');
  if (samplingRate === 1) return gaussianRdp(noiseMultiplier, order);
  const logA = Number.isInteger(order)
    ? logAForIntegerOrder(samplingRate, noiseMultiplier, order)
    : logAForFractionalOrder(samplingRate, noiseMultiplier, order);
  // RDP is ≥ 0; for tiny q and huge z the true value (~1e-26) is below the rounding error of log A.
  return Math.max(0, logA / (order - 1));
}

/** RDP per order of one round, over a grid of orders. */
export function roundRdp(noiseMultiplier: number, samplingRate: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  requireOrders(orders);
  return orders.map((order) => sampledGaussianRdp(samplingRate, noiseMultiplier, order));
}

/** Composition: RDP adds per order, so each of `rounds` identical rounds adds `perRound`. */
export function composeRdp(perRound: readonly number[], rounds: number): number[] {
  requireRounds(rounds);
  return perRound.map((rdp) => (rounds === 0 ? 0 : rdp * rounds));
}

function epsilonAtOrder(order: number, rdp: number, delta: number, conversion: Conversion): number {
  if (rdp === Infinity) return Infinity;
  if (conversion === 'mironov2017') return rdp + Math.log(1 / delta) / (order - 1);
  // KL bound: δ ≤ √(1 − e^(−KL)) and KL ≤ ε_RDP(α) for α ≥ 1, so (0, δ)-DP holds already.
  if (delta * delta + Math.expm1(-rdp) > 0) return 0;
  // Below α = 1.01 the bound is numerically unstable and never the minimum (dp_accounting does the same).
  if (order <= 1.01) return Infinity;
  return rdp + Math.log1p(-1 / order) - Math.log(delta * order) / (order - 1);
}

/** (ε, δ) from RDP values at the given orders: the minimum over orders of the chosen conversion. */
export function epsilonFromRdp(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: Conversion = 'balle2020',
): PrivacySpent {
  requireOrders(orders);
  requireDelta(delta);
  requireConversion(conversion);
  if (rdp.length !== orders.length) throw new RangeError(`rdp must have one value per order (${orders.length}), got ${rdp.length}`);
  rdp.forEach((value, i) => {
    if (typeof value !== 'number' || Number.isNaN(value) || value < 0) throw new RangeError(`rdp[${i}] must be ≥ 0, got ${describe(value)}`);
  });
  let best: PrivacySpent = { epsilon: Infinity, delta, order: orders[0]! };
  orders.forEach((order, i) => {
    const epsilon = epsilonAtOrder(order, rdp[i]!, delta, conversion);
    if (epsilon < best.epsilon) best = { epsilon, delta, order };
  });
  return { ...best, epsilon: Math.max(0, best.epsilon) };
}

/** The privacy spent after `rounds` rounds with noise multiplier z and client sampling rate q. */
export function privacySpentAfter(
  rounds: number,
  delta: number,
  noiseMultiplier: number,
  samplingRate = 1,
  options: AccountingOptions = {},
): PrivacySpent {
  requireRounds(rounds);
  requireDelta(delta);
  const orders = options.orders ?? DEFAULT_ORDERS;
  const perRound = roundRdp(noiseMultiplier, samplingRate, orders);
  return epsilonFromRdp(orders, composeRdp(perRound, rounds), delta, options.conversion);
}

/** ε(δ) after `rounds` rounds. */
export function epsilonAfter(
  rounds: number,
  delta: number,
  noiseMultiplier: number,
  samplingRate = 1,
  options: AccountingOptions = {},
): number {
  return privacySpentAfter(rounds, delta, noiseMultiplier, samplingRate, options).epsilon;
}

/**
 * The largest number of rounds T with ε(δ) after T rounds ≤ targetEpsilon; Infinity if even
 * 2⁵³ − 1 rounds fit. ε after T rounds never decreases in T (each order's bound grows with T,
 * and so does their minimum), so the answer is found by doubling, then bisection.
 */
export function roundsWithin(
  targetEpsilon: number,
  delta: number,
  noiseMultiplier: number,
  samplingRate = 1,
  options: AccountingOptions = {},
): number {
  requireTargetEpsilon(targetEpsilon);
  requireDelta(delta);
  const orders = options.orders ?? DEFAULT_ORDERS;
  const perRound = roundRdp(noiseMultiplier, samplingRate, orders);
  const fits = (rounds: number) => epsilonFromRdp(orders, composeRdp(perRound, rounds), delta, options.conversion).epsilon <= targetEpsilon;
  if (!fits(1)) return 0;
  let low = 1;
  let high = 2;
  while (fits(high)) {
    if (high >= Number.MAX_SAFE_INTEGER) return Infinity;
    low = high;
    high = Math.min(high * 2, Number.MAX_SAFE_INTEGER);
  }
  while (high - low > 1) {
    const middle = low + Math.floor((high - low) / 2);
    if (fits(middle)) low = middle;
    else high = middle;
  }
  return low;
}

/** "Stop when the next round would exceed the budget": may round `completedRounds + 1` run? */
export function nextRoundFits(
  completedRounds: number,
  targetEpsilon: number,
  delta: number,
  noiseMultiplier: number,
  samplingRate = 1,
  options: AccountingOptions = {},
): boolean {
  requireRounds(completedRounds);
  requireTargetEpsilon(targetEpsilon);
  return epsilonAfter(completedRounds + 1, delta, noiseMultiplier, samplingRate, options) <= targetEpsilon;
}
