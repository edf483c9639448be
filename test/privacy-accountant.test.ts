/**
 * The RDP accountant (operator/privacy/) against published values. Each reference names
 * its source: repository, file, test and the commit read. Tolerances: where the source asserts
 * its own tolerance we use the same one (assertAlmostEqual(places=7) is |Δ| < 5e-8, places=5
 * is |Δ| < 5e-6, rtol=1e-4 is relative); our computation is the same float64 algorithm, so the
 * residual differences come only from log(erfc) (ours: series + continued fraction; theirs:
 * scipy's log_ndtr) and summation order, measured at ≤ 4e-12 relative.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  composeRdp,
  DEFAULT_ORDERS,
  epsilonAfter,
  epsilonFromRdp,
  gaussianRdp,
  nextRoundFits,
  OPACUS_ORDERS,
  privacySpentAfter,
  roundRdp,
  roundsWithin,
  sampledGaussianRdp,
  TF_PRIVACY_ORDERS,
} from '../operator/privacy/rdp-accountant.js';
import { logAdd, logErfc, logSub } from '../operator/privacy/log-math.js';
import { privacyPlanSchema } from '../operator/privacy/plan-schema.js';
import { noiseMultiplierFor } from '../operator/privacy/calibrate.js';

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} vs ${expected} (tolerance ${tolerance})`);
}
const assertRelClose = (actual: number, expected: number, rtol: number, what: string) =>
  assertClose(actual, expected, rtol * Math.abs(expected), what);

const TF_RDP_TEST = 'tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py @09270afe';
const DP_ACCOUNTING_TEST = 'google/differential-privacy python/dp_accounting/rdp/rdp_privacy_accountant_test.py @025111e7';
const TF_DPSGD_TEST = 'tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py @2cd46dbb';
const OPACUS_TEST = 'pytorch/opacus opacus/tests/accountants_test.py @030b723f';

test('the unsampled Gaussian mechanism has RDP α / (2z²) (Mironov 2017, Prop. 7)', () => {
  for (const z of [0.5, 1, 2.71828, 10]) {
    for (const order of [1.5, 2, 3.14159, 20, 256]) assert.equal(gaussianRdp(z, order), order / (2 * z * z));
  }
  // TF Privacy test_compute_rdp_no_sampling: q = 1, σ = 10, α = 20 → 0.1 (assertEqual).
  assert.equal(sampledGaussianRdp(1, 10, 20), 0.1, TF_RDP_TEST);
});

test('q = 1 reduces the Sampled Gaussian Mechanism to the Gaussian, and q → 1 approaches it', () => {
  for (const order of DEFAULT_ORDERS) assert.equal(sampledGaussianRdp(1, 1.3, order), gaussianRdp(1.3, order));
  for (const order of [2, 2.5, 8, 10.5, 32]) {
    assertRelClose(sampledGaussianRdp(1 - 1e-9, 1.3, order), gaussianRdp(1.3, order), 1e-6, `α = ${order}`);
  }
});

test('RDP of the Sampled Gaussian Mechanism matches TensorFlow Privacy and dp_accounting', () => {
  // test_compute_rdp_scalar: compute_rdp(q=0.1, σ=2, steps=10, order=5) = 0.07737, assertAlmostEqual(places=5).
  assertClose(composeRdp([sampledGaussianRdp(0.1, 2, 5)], 10)[0]!, 0.07737, 5e-6, TF_RDP_TEST);
  // test_compute_rdp_sequence: q=0.01, σ=2.5, 50 steps, assertSequenceAlmostEqual(delta=1e-5).
  const orders = [1.5, 2.5, 5, 50, 100];
  const tf = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
  composeRdp(roundRdp(2.5, 0.01, orders), 50).forEach((rdp, i) => assertClose(rdp, tf[i]!, 1e-5, `${TF_RDP_TEST} α = ${orders[i]}`));
  // test_compute_rdp_poisson_sampled_gaussian: the same event, np.allclose(rtol=1e-4).
  const dp = [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2];
  composeRdp(roundRdp(2.5, 0.01, orders), 50).forEach((rdp, i) => assertRelClose(rdp, dp[i]!, 1e-4, `${DP_ACCOUNTING_TEST} α = ${orders[i]}`));
});

/**
 * A_α by direct numerical integration, the check both libraries make with mpmath
 * (test_compute_log_a_equals_mp, rtol=1e-4): A_α − 1 = ∫ μ₀(x) [((1−q) + q e^((2x−1)/(2σ²)))^α − 1] dx,
 * μ₀ = N(0, σ²), by the trapezoid rule (exponentially accurate for such smooth, fast-decaying integrands).
 */
function logAByIntegration(q: number, sigma: number, order: number): number {
  const h = sigma / 200;
  const from = -14 * sigma;
  const to = order + 14 * sigma;
  let sum = 0;
  for (let x = from; x <= to; x += h) {
    const logDensity = -(x * x) / (2 * sigma * sigma) - Math.log(sigma * Math.sqrt(2 * Math.PI));
    const u = (2 * x - 1) / (2 * sigma * sigma);
    // log((1−q) + q eᵘ), without overflow for large u and without cancellation for small u.
    const logMixture = u > 30 ? logAdd(Math.log1p(-q), Math.log(q) + u) : Math.log1p(q * Math.expm1(u));
    const power = order * logMixture;
    sum += power > 1 ? Math.exp(logDensity + power) - Math.exp(logDensity) : Math.exp(logDensity) * Math.expm1(power);
  }
  return Math.log1p(sum * h);
}

test('log A_α matches numerical integration for integer and fractional orders (the mpmath check of TF Privacy / dp_accounting)', () => {
  // The (q, σ, α) of test_compute_log_a_equals_mp with σ ≥ 1 (σ = 0.1 needs multi-precision),
  // then two of ours with a large q and σ < 2, where the fractional series has many terms of both signs.
  for (const [q, sigma, order] of [[1e-6, 1, 27], [1e-4, 1, 1.5], [1e-3, 1, 2], [0.01, 10, 20], [0.1, 100, 20.5], [0.999, 100, 256.1], [0.3, 1.5, 7.5], [0.05, 0.8, 12.25]] as const) {
    const logA = sampledGaussianRdp(q, sigma, order) * (order - 1);
    assertRelClose(logA, logAByIntegration(q, sigma, order), 1e-4, `q=${q} σ=${sigma} α=${order} (${TF_RDP_TEST})`);
  }
});

test('(ε, δ) conversions match the hand-computed and Gaussian values of TF Privacy and dp_accounting', () => {
  // test_compute_epsilon_delta_pure_dp / test_get_privacy_spent_check_target_delta: RDP 1.1 at orders 2…32,
  // δ = 1e-5 → ε = 1.32783806176 at order 32 (assertAlmostEqual, places=7).
  const orders = Array.from({ length: 31 }, (_, i) => i + 2);
  const pure = epsilonFromRdp(orders, orders.map(() => 1.1), 1e-5);
  assertClose(pure.epsilon, 1.32783806176, 5e-8, DP_ACCOUNTING_TEST);
  assert.equal(pure.order, 32);
  // Same file: z = 4.530877117 gives exactly (1, 1e-6)-DP for the Gaussian (orders 1.000 … 99.999 step 0.001).
  const fine = Array.from({ length: 99_000 }, (_, i) => (i + 1000) * 0.001).filter((o) => o > 1);
  assertClose(epsilonFromRdp(fine, fine.map((o) => gaussianRdp(4.530877117, o)), 1e-6).epsilon, 1, 5e-8, DP_ACCOUNTING_TEST);
  // TF Privacy test_check_composition: two heterogeneous SGMs composed; the classic conversion gives
  // 8.509656 at order 2.5 (the commented-out places=5 assertion), the improved one stays below it.
  const grid = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
  const first = composeRdp(roundRdp(0.4, 1e-4, grid), 40_000);
  const both = composeRdp(roundRdp(2, 0.1, grid), 100).map((rdp, i) => rdp + first[i]!);
  const classic = epsilonFromRdp(grid, both, 1e-5, 'mironov2017');
  assertClose(classic.epsilon, 8.509656, 5e-6, TF_RDP_TEST);
  assert.equal(classic.order, 2.5);
  assert.ok(epsilonFromRdp(grid, both, 1e-5).epsilon <= 8.509656);
});

test('DP-SGD examples of TF Privacy compute_dp_sgd_privacy (dp_accounting RDP, improved conversion)', () => {
  // steps = ceil(epochs · n / batch), q = batch / n, orders = TF_PRIVACY_ORDERS (compute_dp_sgd_privacy_lib.py @ff992303).
  const cases = [
    { n: 60_000, batch: 150, z: 1.3, epochs: 15, delta: 1e-5, epsilon: 0.7242234026109595, order: 19 },
    { n: 100_000, batch: 100, z: 1.0, epochs: 30, delta: 1e-7, epsilon: 1.4154988495444842, order: 13 },
    { n: 100_000_000, batch: 1024, z: 0.1, epochs: 10, delta: 1e-7, epsilon: 5907982.3113978775, order: 1.25 },
  ];
  for (const c of cases) {
    const steps = Math.ceil((c.epochs * c.n) / c.batch);
    const spent = privacySpentAfter(steps, c.delta, c.z, c.batch / c.n, { orders: TF_PRIVACY_ORDERS });
    // places=7 in the source; for ε ≈ 5.9e6 seven decimals exceed float64's 16 digits, so relative 1e-10 there.
    assertClose(spent.epsilon, c.epsilon, Math.max(5e-8, 1e-10 * c.epsilon), `${TF_DPSGD_TEST} n=${c.n}`);
    assert.equal(spent.order, c.order);
  }
});

test('the MNIST tutorial: N = 60000, batch 256, z = 1.1, 60 epochs, δ = 1e-5 gives ε = 3.01 (classic conversion)', () => {
  // tensorflow/privacy tutorials/README.md @d435fcbf: "satisfies differential privacy with eps = 3.01 and delta = 1e-05"
  // (three significant figures, so |Δ| ≤ 0.005; computed before the improved conversion existed).
  const steps = Math.ceil((60 * 60_000) / 256);
  const classic = epsilonAfter(steps, 1e-5, 1.1, 256 / 60_000, { orders: TF_PRIVACY_ORDERS, conversion: 'mironov2017' });
  assertClose(classic, 3.01, 0.005, 'tensorflow/privacy tutorials/README.md');
  const improved = epsilonAfter(steps, 1e-5, 1.1, 256 / 60_000, { orders: TF_PRIVACY_ORDERS });
  assert.ok(improved < classic, `${improved} < ${classic}`);
});

test('Opacus RDPAccountant: z = 1.5, q = 0.04, 2250 steps, δ = 1e-5 → ε = 7.32911117143', () => {
  // opacus/tests/accountants_test.py test_rdp_accountant (assertAlmostEqual, places=7), with
  // RDPAccountant.DEFAULT_ALPHAS and the Balle et al. 2020 Thm. 21 conversion of opacus/accountants/analysis/rdp.py.
  assertClose(epsilonAfter(2250, 1e-5, 1.5, 0.04, { orders: OPACUS_ORDERS }), 7.32911117143, 5e-8, OPACUS_TEST);
});

/** δ(ε) of the Gaussian mechanism, exact (Balle & Wang, "Improving the Gaussian Mechanism", ICML 2018, Thm. 8). */
function exactGaussianDelta(epsilon: number, z: number): number {
  const phi = (x: number) => 0.5 * Math.exp(logErfc(-x / Math.SQRT2));
  return phi(1 / (2 * z) - epsilon * z) - Math.exp(epsilon) * phi(-1 / (2 * z) - epsilon * z);
}

test('ε(δ) is never below the exact Gaussian privacy curve, and the default conversion is tighter than the classic one', () => {
  // The check of dp_accounting's test_delta_bounds_gaussian, run in the ε-from-δ direction.
  for (const z of [0.8, 1, 2, 5]) {
    for (const delta of [1e-3, 1e-5, 1e-7, 1e-10]) {
      const improved = epsilonAfter(1, delta, z);
      const classic = epsilonAfter(1, delta, z, 1, { conversion: 'mironov2017' });
      assert.ok(exactGaussianDelta(improved, z) <= delta * (1 + 1e-9), `z=${z} δ=${delta}: ${improved} is not a valid ε`);
      assert.ok(improved <= classic, `z=${z} δ=${delta}: ${improved} > ${classic}`);
    }
  }
});

test('ε grows with rounds and falls with the noise multiplier and with the sampling rate', () => {
  let previous = 0;
  for (const rounds of [1, 2, 5, 10, 50, 100, 1000]) {
    const epsilon = epsilonAfter(rounds, 1e-5, 1.1, 0.1);
    assert.ok(epsilon > previous, `${rounds} rounds: ${epsilon} ≤ ${previous}`);
    previous = epsilon;
  }
  assert.equal(epsilonAfter(0, 1e-5, 1.1, 0.1), 0);
  let previousForZ = Infinity;
  for (const z of [0.5, 0.8, 1, 1.5, 3, 10]) {
    const epsilon = epsilonAfter(100, 1e-5, z);
    assert.ok(epsilon < previousForZ, `z = ${z}: ${epsilon} ≥ ${previousForZ}`);
    previousForZ = epsilon;
  }
  assert.ok(epsilonAfter(100, 1e-5, 1.1, 0.05) < epsilonAfter(100, 1e-5, 1.1, 0.5));
});

test('roundsWithin is the largest T with epsilonAfter(T) ≤ target; nextRoundFits agrees', () => {
  for (const [target, delta, z, q] of [[8, 1e-5, 1.1, 1], [8, 1e-5, 1.1, 0.01], [3, 1e-6, 2, 0.2], [2, 1e-5, 5, 1]] as const) {
    const rounds = roundsWithin(target, delta, z, q);
    assert.ok(rounds >= 1 && Number.isSafeInteger(rounds), `${rounds}`);
    assert.ok(epsilonAfter(rounds, delta, z, q) <= target);
    assert.ok(epsilonAfter(rounds + 1, delta, z, q) > target);
    assert.equal(nextRoundFits(rounds - 1, target, delta, z, q), true);
    assert.equal(nextRoundFits(rounds, target, delta, z, q), false);
  }
  assert.equal(roundsWithin(0.1, 1e-5, 0.5), 0, 'not even one round fits');
  assert.equal(roundsWithin(1, 1e-5, 1e4, 1e-6), Infinity, 'more than 2^53 rounds fit');
  // RDP ≈ 1e-26 per round here, below log A's rounding error: clamped at 0, never negative (which would be refused).
  assert.equal(epsilonAfter(1, 1e-5, 1e4, 1e-9), 0);
  assert.ok(roundRdp(1e4, 1e-9).every((rdp) => rdp >= 0));
});

test('bad arguments are refused with a RangeError naming the argument', () => {
  const refuses = (run: () => unknown, name: string) => assert.throws(run, (e: unknown) => e instanceof RangeError && e.message.startsWith(name));
  for (const z of [0, -1, NaN, Infinity]) refuses(() => epsilonAfter(10, 1e-5, z, 0.1), 'noiseMultiplier');
  for (const q of [0, -0.1, 1.01, NaN, Infinity]) refuses(() => epsilonAfter(10, 1e-5, 1, q), 'samplingRate');
  for (const delta of [0, 1, -1e-5, 2, NaN]) refuses(() => epsilonAfter(10, delta, 1, 0.1), 'delta');
  for (const rounds of [-1, 1.5, NaN, Infinity]) refuses(() => epsilonAfter(rounds, 1e-5, 1, 0.1), 'rounds');
  for (const target of [0, -1, NaN, Infinity]) refuses(() => roundsWithin(target, 1e-5, 1, 0.1), 'targetEpsilon');
  refuses(() => roundsWithin(1, 1e-5, 0, 0.1), 'noiseMultiplier');
  refuses(() => gaussianRdp(1, 1), 'order');
  refuses(() => epsilonAfter(10, 1e-5, 1, 0.1, { orders: [2, 0.5] }), 'orders[1]');
  refuses(() => epsilonAfter(10, 1e-5, 1, 0.1, { orders: [] }), 'orders');
  refuses(() => epsilonFromRdp([2, 3], [0.1], 1e-5), 'rdp');
  refuses(() => epsilonFromRdp([2], [NaN], 1e-5), 'rdp[0]');
  refuses(() => epsilonAfter(10, 1e-5, 1, 0.1, { conversion: 'abadi' as never }), 'conversion');
});

test('log-space helpers: logAdd, logSub and logErfc against known values', () => {
  assertRelClose(logAdd(Math.log(2), Math.log(3)), Math.log(5), 1e-15, 'logAdd');
  assert.equal(logAdd(-Infinity, 1.5), 1.5);
  assertRelClose(logSub(Math.log(5), Math.log(3)), Math.log(2), 1e-15, 'logSub');
  assert.equal(logSub(2, 2), -Infinity);
  assert.throws(() => logSub(1, 2));
  // erfc values: Abramowitz & Stegun Table 7.1 / any multi-precision evaluation.
  for (const [x, erfc] of [[-3, 1.9999779095030014], [-1, 1.8427007929497148], [0, 1], [0.5, 0.4795001221869535], [2, 0.004677734981047266], [3, 2.209049699858544e-5], [10, 2.088487583762545e-45]] as const) {
    assertRelClose(Math.exp(logErfc(x)), erfc, 1e-13, `erfc(${x})`);
  }
  // Far past underflow, log erfc(x) ≈ −x² − log(x√π) − 1/(2x²).
  assertRelClose(logErfc(100), -1e4 - Math.log(100 * Math.sqrt(Math.PI)) - 0.5e-4, 1e-12, 'log erfc(100)');
});

test('the plan privacy section: defaults, strictness, and a budget that allows no round is refused', () => {
  const parsed = privacyPlanSchema.parse({ targetEpsilon: 8, delta: 1e-5, noiseMultiplier: 1.1, clipNorm: 1 });
  assert.deepEqual(parsed, { targetEpsilon: 8, delta: 1e-5, noiseMultiplier: 1.1, clipNorm: 1, samplingRate: 1, conversion: 'balle2020' });
  assert.equal(privacyPlanSchema.safeParse({ ...parsed, noise: 1 }).success, false, 'unknown keys');
  for (const bad of [{ delta: 1 }, { delta: 0 }, { noiseMultiplier: 0 }, { clipNorm: -1 }, { samplingRate: 0 }, { samplingRate: 1.5 }, { targetEpsilon: Infinity }]) {
    assert.equal(privacyPlanSchema.safeParse({ ...parsed, ...bad }).success, false, JSON.stringify(bad));
  }
  const tooSmall = privacyPlanSchema.safeParse({ targetEpsilon: 0.1, delta: 1e-5, noiseMultiplier: 0.5, clipNorm: 1 });
  assert.equal(tooSmall.success, false);
  assert.match(tooSmall.error!.issues[0]!.message, /single round/);
  assert.deepEqual(tooSmall.error!.issues[0]!.path, ['targetEpsilon']);
});

test('noiseMultiplierFor: the smallest z (3 significant digits, rounded up) with which the rounds fit the budget', () => {
  for (const [rounds, target, delta] of [[8, 1, 1e-5], [8, 3, 1e-5], [8, 8, 1e-5], [1, 8, 1e-5], [50, 2, 1e-6]] as const) {
    const z = noiseMultiplierFor(rounds, target, delta);
    assert.equal(Number(z.toPrecision(3)), z, `${z} has 3 significant digits`);
    assert.ok(epsilonAfter(rounds, delta, z) <= target, `${rounds} rounds at z = ${z} fit ε ${target}`);
    const step = 10 ** (Math.floor(Math.log10(z)) - 2);
    assert.ok(epsilonAfter(rounds, delta, z - step) > target, `z − one step (${z - step}) no longer fits ε ${target}`);
  }
  // Independent of the search: ε after 8 rounds at z = 11.5 is just below 1, at 11.4 above (δ = 1e-5).
  assert.equal(noiseMultiplierFor(8, 1, 1e-5), 11.5);
  assert.throws(() => noiseMultiplierFor(0, 1, 1e-5), /rounds must be an integer ≥ 1/);
  assert.throws(() => noiseMultiplierFor(8, -1, 1e-5), /targetEpsilon/);
  assert.throws(() => noiseMultiplierFor(8, 1, 2), /delta/);
});
