/** The bench's CPU per round leaves out what it cannot have counted: processes that exited at the final commit. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measuredPerRound } from '../bench/round-stats.js';

test('CPU per round runs from round 1 to the commit before the final one, and stops where the counter fell', () => {
  const at = (...values: number[]) => values.map((measured) => ({ measured }));
  assert.equal(measuredPerRound(at(0, 100, 200, 300, 50)), 100, 'the final commit (participants exiting) is left out');
  assert.equal(measuredPerRound(at(0, 100, 200, 90, 400, 500)), 100, 'a counter that fell (a process gone) ends the span');
  assert.equal(measuredPerRound(at(0, 100, NaN, 300, 400, 0)), 100, 'a failed sample is skipped');
  assert.ok(Number.isNaN(measuredPerRound(at(0, 100, 5))), 'one sample is no span');
});
