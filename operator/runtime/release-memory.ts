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
 * Below this much memory in array buffers (a small model's updates) a collection would free little
 * and costs a round of many edges a few ms per update: it is skipped.
 */
const WORTH_COLLECTING_BYTES = 32 * 1024 * 1024;

export function releaseMemory(): void {
  if (process.memoryUsage().arrayBuffers < WORTH_COLLECTING_BYTES) return;
  if (!collect) {
    // `gc` exists only with --expose-gc; setting the flag now exposes it to new contexts only, not to this one.
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}
