import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Metrics } from '../operator/contracts.js';
import { aspectsScore, computeAspectsMetrics, meanBce, renderMetricsComparison, rocAuc, toMetrics } from '../edge-app/metrics/index.js';

const close = (a: number | null, b: number, what: string) => {
  assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
};

// Two volumes, hand-computed below.
//   A: true affected C, L (ASPECTS 8); predicted C, IC (ASPECTS 8)
//   B: true affected C, L, IC, I, M1 (ASPECTS 5); predicted C, L, IC (ASPECTS 7)
const probs = [
  0.9, 0.4, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1,
  0.8, 0.7, 0.6, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1,
];
const labels = [
  1, 1, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
];

describe('rocAuc', () => {
  it('ranks, with ties counted one half', () => {
    close(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75, 'sklearn example');
    close(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]), 0.5, 'all tied');
    close(rocAuc([0.2, 0.6, 0.6, 0.9], [0, 0, 1, 1]), 0.875, 'one tie across classes');
    close(rocAuc([0.9, 0.1], [0, 1]), 0, 'perfectly wrong');
    assert.equal(rocAuc([0.3, 0.7], [1, 1]), null);
    assert.equal(rocAuc([], []), null);
  });
});

describe('computeAspectsMetrics (hand-computed)', () => {
  const m = computeAspectsMetrics(probs, labels);

  it('pools classes 0 and 1 over all regions', () => {
    // TP 4, FP 1, FN 3, TN 12
    close(m.classes['1'].precision, 4 / 5, 'precision 1');
    close(m.classes['1'].recall, 4 / 7, 'recall 1');
    close(m.classes['1'].f1, 2 / 3, 'F1 1');
    assert.equal(m.classes['1'].support, 7);
    close(m.classes['0'].precision, 12 / 15, 'precision 0');
    close(m.classes['0'].recall, 12 / 13, 'recall 0');
    close(m.classes['0'].f1, (2 * 0.8 * (12 / 13)) / (0.8 + 12 / 13), 'F1 0');
    assert.equal(m.classes['0'].support, 13);
    close(m.accuracy, 16 / 20, 'accuracy');
    assert.equal(m.n, 2);
  });

  it('per region sensitivity, specificity, AUC (null when a class is absent)', () => {
    assert.deepEqual(m.regions.C, { sensitivity: 1, specificity: null, auc: null, positives: 2, negatives: 0 });
    assert.deepEqual(m.regions.L, { sensitivity: 0.5, specificity: null, auc: null, positives: 2, negatives: 0 });
    assert.deepEqual(m.regions.IC, { sensitivity: 1, specificity: 0, auc: 0.5, positives: 1, negatives: 1 }); // tie 0.6 / 0.6
    assert.deepEqual(m.regions.I, { sensitivity: 0, specificity: 1, auc: 1, positives: 1, negatives: 1 });
    assert.deepEqual(m.regions.M6, { sensitivity: null, specificity: 1, auc: null, positives: 0, negatives: 2 });
    close(m.macroAuc, (0.5 + 1 + 1) / 3, 'macro AUC over IC, I, M1');
  });

  it('ASPECTS agreement and the ≥ 6 dichotomy', () => {
    assert.equal(aspectsScore(labels.slice(0, 10)), 8);
    assert.equal(aspectsScore(labels.slice(10)), 5);
    assert.deepEqual(m.aspects, { meanDifference: 1, meanAbsoluteDifference: 1, withinOnePercent: 50, dichotomyAccuracy: 0.5 });
  });

  it('mean BCE over all 20 outputs', () => {
    let sum = 0;
    probs.forEach((p, i) => (sum -= labels[i] === 1 ? Math.log(p) : Math.log(1 - p)));
    close(m.loss, sum / 20, 'loss');
    const clipped = meanBce([0, 1], [1, 0])!;
    assert.ok(Math.abs(clipped + Math.log(1e-7)) < 1e-6, `clipped: ${clipped}`);
  });

  it('is JSON: empty input gives nulls, never NaN', () => {
    const empty = computeAspectsMetrics([], []);
    assert.equal(empty.n, 0);
    assert.equal(empty.loss, null);
    assert.equal(empty.classes['1'].precision, null);
    assert.equal(empty.aspects.withinOnePercent, null);
    assert.deepEqual(JSON.parse(JSON.stringify(empty)), empty);
    assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
  });

  it('refuses mismatched or non-binary input', () => {
    assert.throws(() => computeAspectsMetrics([0.5], [1]), /multiple of 10/);
    assert.throws(() => computeAspectsMetrics(new Array(10).fill(0.5), new Array(10).fill(2)), /expected 0 or 1/);
  });

  it('renders a central vs federated Markdown table', () => {
    const other: Metrics = toMetrics(computeAspectsMetrics(probs.map((p) => 1 - p), labels));
    const table = renderMetricsComparison(toMetrics(m), other);
    const lines = table.trim().split('\n');
    assert.equal(lines[0], '| metric | central | federated |');
    assert.equal(lines[1], '|---|---:|---:|');
    assert.ok(lines.includes('| class 1 (affected) precision | 0.800 | 0.200 |'), table);
    assert.ok(lines.includes('| IC AUC | 0.500 | 0.500 |'), table);
    assert.ok(lines.includes('| C specificity | — | — |'), table);
    assert.ok(lines.includes('| ASPECTS within ±1 | 50.0 % | 0.0 % |'), table);
    assert.ok(lines.includes('| volumes | 2 | 2 |'), table);
    assert.equal(lines.length, 2 + 4 + 8 + 30 + 4);
  });
});
