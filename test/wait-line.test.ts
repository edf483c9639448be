/** The aggregator's wait line: said at once when a wait begins, then at most once a second, and a line held back is said when the second is up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WaitLine } from '../operator/reconcile/wait-line.js';

test('a wait is said at once, changes within the interval are held back until it ends, repeats are never said', () => {
  const line = new WaitLine(1000);
  assert.deepEqual(line.offer('0/100', 10_000), { say: true });
  assert.deepEqual(line.offer('0/100', 10_100), { say: false }, 'the same line again');
  assert.deepEqual(line.offer('1/100', 10_200), { say: false, againAtMs: 11_000 });
  assert.deepEqual(line.offer('2/100', 10_900), { say: false, againAtMs: 11_000 });
  assert.deepEqual(line.offer('2/100', 11_005), { say: true }, 'offered again when woken, it is said as it stands');
  assert.deepEqual(line.offer('3/100', 11_500), { say: false, againAtMs: 12_005 });
});

test('after the aggregator acted, the next wait is said at once', () => {
  const line = new WaitLine(1000);
  assert.equal(line.offer('round 1: 0/2', 0).say, true);
  line.ended();
  assert.equal(line.offer('round 2: 0/2', 50).say, true);
  assert.equal(line.offer('round 2: 1/2', 80).say, false);
});
