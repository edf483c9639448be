/**
 * A writer for the stale-lock stress test: `count` compare-and-swap updates of one ref, each
 * from the value it read to a value of its own, retried on conflict or a held lock. Prints
 * every update it was told succeeded, as JSON `[expected, next]` pairs, on stdout.
 */
import { createHash } from 'node:crypto';
import { readRef, updateRef } from '../../operator/git/refs.js';
import { RefConflict, RefLocked } from '../../operator/errors.js';

const [gitdir, ref, id, countText] = process.argv.slice(2) as [string, string, string, string];
const succeeded: Array<[string | null, string]> = [];
for (let i = 0; succeeded.length < Number(countText); i++) {
  const expected = await readRef(gitdir, ref);
  const next = createHash('sha1').update(`${id} ${i}`).digest('hex');
  try {
    await updateRef(gitdir, ref, next, expected);
    succeeded.push([expected, next]);
  } catch (e) {
    if (!(e instanceof RefConflict) && !(e instanceof RefLocked)) throw e;
  }
}
process.stdout.write(JSON.stringify(succeeded));
