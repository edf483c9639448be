/**
 * Child process for the checkpoint-writing test: commits a checkpoint of `megabytes` written from
 * its pieces (as a git blob, or as an LFS object with `lfs`) and moves `main` to it. Run under a
 * file-size limit, the write fails midway; the exit code and stderr say how.
 */
import { Repository } from '../../operator/git/repository.js';
import { checkpointPieces } from '../../operator/store/federation.js';
import { WEIGHTS_FILE } from '../../operator/git/names.js';

const [gitdir, mode, megabytes] = process.argv.slice(2) as [string, 'git' | 'lfs', string];
const values = Number(megabytes) * 1024 * 1024 / 4;
const data = Float32Array.from({ length: values }, (_, i) => Math.sin(i));
const pieces = checkpointPieces(new Map([['w', { shape: [values], data }]]), { planId: 'a'.repeat(40), round: 1, architecture: 'test/1' });
const repo = new Repository(gitdir);
const head = await repo.readRef('refs/heads/main');
const oid = await repo.writeCommit({ files: { [WEIGHTS_FILE]: pieces }, parents: head ? [head] : [], message: 'big\n', author: { name: 'x', email: 'x@y', timestamp: 1 }, ...(mode === 'lfs' ? { lfs: { minBytes: 0 } } : {}) });
await repo.updateRef('refs/heads/main', oid, head);
console.log(oid);
