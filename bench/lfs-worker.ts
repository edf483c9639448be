/**
 * Child process for the LFS benchmark (bench/lfs.ts): one push or fetch of a checkpoint through
 * fedgit's Git LFS path over HTTP, in a process of its own so that its peak memory is its alone.
 *   push <repo URL> <cache> <file> <user> <token>: commit the file's bytes (held in memory, as a
 *     participant holds its weights) with `lfs`, and push (objects first, then the ref);
 *   fetch <repo URL> <cache> <ref> <user> <token>: refresh a fresh mirror and read the weights.
 * Prints `ms`: the operation's own time, without node's start-up or loading the file.
 */
import { readFile } from 'node:fs/promises';
import { createOpener } from '../operator/store/open-repository.js';

const [op, url, cacheDir, arg, username, token] = process.argv.slice(2) as [string, string, string, string, string, string];
// A participant holds its weights in memory already: loaded before the clock starts.
const weights = op === 'push' ? await readFile(arg) : undefined;
const started = performance.now();
const repo = await createOpener({ cacheDir, auth: { username, token } }).require(url, 'the benchmark repository');
await repo.refresh();
if (weights) {
  const head = await repo.readRef('refs/heads/fedgit-bench');
  const oid = await repo.writeCommit({ files: { 'weights.safetensors': weights }, parents: head ? [head] : [], message: 'bench\n', author: { name: 'bench', email: 'b@x', timestamp: 1 }, lfs: { minBytes: 0 } });
  await repo.updateRef('refs/heads/fedgit-bench', oid, head);
  console.log(JSON.stringify({ oid, ms: performance.now() - started }));
} else if (op === 'fetch') {
  const bytes = await repo.readFile(await repo.resolve(arg), 'weights.safetensors');
  console.log(JSON.stringify({ bytes: bytes.length, ms: performance.now() - started }));
} else {
  throw new Error(`unknown operation ${op}`);
}
