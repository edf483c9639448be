/** Child process for the git-store benchmark: one write or read through fedgit's store, timed inside, so its peak memory can be measured alone. */
import { readFile } from 'node:fs/promises';
import { Repository } from '../operator/git/repository.js';

const [op, gitdir, arg] = process.argv.slice(2) as ['write' | 'read' | 'idle', string, string];
const repo = new Repository(gitdir);
if (op === 'write') {
  const weights = await readFile(arg);
  const started = performance.now();
  const head = await repo.readRef('refs/heads/bench');
  const oid = await repo.writeCommit({ files: { 'weights.safetensors': weights }, parents: head ? [head] : [], message: 'bench\n', author: { name: 'bench', email: 'b@x', timestamp: 1 } });
  await repo.updateRef('refs/heads/bench', oid, head);
  console.log(JSON.stringify({ ms: performance.now() - started, oid }));
} else if (op === 'read') {
  const started = performance.now();
  const bytes = await repo.readFile(arg, 'weights.safetensors');
  console.log(JSON.stringify({ ms: performance.now() - started, bytes: bytes.length }));
} else {
  console.log(JSON.stringify({ ms: 0 }));
}
