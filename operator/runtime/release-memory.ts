/**
 * A full garbage collection, for the aggregator between the updates of a streamed merge. V8 frees
 * an ArrayBuffer only when a collection finds it dead, and the merge's synchronous float64 work
 * gives its incremental collector no turn: measured on 8 × 50 MB, the buffer of the update just
 * added was still resident when the next one (or the merged model) was allocated, ~50 MB above
 * the merge's own needs. A collection of the aggregator's small JavaScript heap takes milliseconds
 * against the ~half second that reading a 50 MB update takes.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

let collect: (() => void) | undefined;

/**
 * Unless array buffers grew by this much since the merge began or since the last collection (a big
 * model or update was read whole), a collection would free little and cost a round of many edges
 * tens of ms per update: it is skipped. Measured: with 32 MiB of small updates kept for the merge,
 * collecting after each of 100 updates took 7.8 s of the aggregator's CPU per round.
 */
const WORTH_COLLECTING_BYTES = 32 * 1024 * 1024;

/** A release for one merge: call it where the merge has dropped what it read. */
export function memoryReleaser(): () => void {
  let baseline = process.memoryUsage().arrayBuffers;
  return () => {
    if (process.memoryUsage().arrayBuffers - baseline < WORTH_COLLECTING_BYTES) return;
    collectGarbage();
    baseline = process.memoryUsage().arrayBuffers;
  };
}

function collectGarbage(): void {
  if (!collect) {
    // `gc` exists only with --expose-gc; setting the flag now exposes it to new contexts only, not to this one.
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}
