/** The reconcile loop hands each run the locations named by the triggers it coalesced, or nothing when one named none. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconcileLoop } from '../operator/runtime/reconcile-loop.js';
import type { ReconcileOutcome } from '../operator/reconcile/reconciler.js';
import { SILENT } from '../operator/runtime/silent-log.js';

type Seen = string[] | 'any';

function recordingLoop(outcomes: Array<ReconcileOutcome | Error> = []) {
  const seen: Seen[] = [];
  let release: () => void = () => {};
  let held: Promise<void> = Promise.resolve();
  const loop = new ReconcileLoop(async (moved) => {
    seen.push(moved ? [...moved].sort() : 'any');
    await held;
    const outcome = outcomes.shift();
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }, SILENT);
  const hold = () => (held = new Promise((resolve) => (release = resolve)));
  return { loop, seen, hold, release: () => release() };
}

test('the first run looks at everything; triggers during a run coalesce into one run given the union of what they named', async () => {
  const { loop, seen, hold, release } = recordingLoop();
  hold();
  loop.trigger(['x']);
  loop.trigger(['a']);
  loop.trigger(['b', 'a']);
  release();
  await loop.idle();
  await loop.idle();
  assert.deepEqual(seen, ['any', ['a', 'b']]);
  loop.trigger(['c']);
  await loop.idle();
  assert.deepEqual(seen.at(-1), ['c']);
  await loop.stop();
});

test('one trigger naming nothing among those coalesced makes the run look at everything', async () => {
  const { loop, seen, hold, release } = recordingLoop();
  loop.trigger(['x']);
  await loop.idle();
  hold();
  loop.trigger(['a']);
  await Promise.resolve();
  loop.trigger(['b']);
  loop.trigger();
  loop.trigger(['c']);
  release();
  while (seen.length < 3) await new Promise((r) => setTimeout(r, 5));
  await loop.idle();
  assert.deepEqual(seen.slice(1), [['a'], 'any']);
  await loop.stop();
});

test('a run that asks to look again, or that failed, is followed by a look at everything', async () => {
  const { loop, seen } = recordingLoop([undefined, { lookAgain: true }, undefined, new Error('server down'), undefined]);
  loop.trigger(['x']);
  await loop.idle();
  loop.trigger(['a']);
  while (seen.length < 3) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(seen.slice(1, 3), [['a'], 'any']);
  loop.trigger(['b']);
  while (seen.length < 5) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.slice(3, 5), [['b'], 'any'], 'the retry after a failure looks at everything');
  await loop.stop();
});
