/**
 * A checkpoint written from its pieces (its header, then views on the tensors) without one buffer
 * of its size: the same bytes, object ids and signed hash as the rendered file, as a git blob and
 * as an LFS object; and a write that fails midway leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tempDir, git } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { checkpointBytes, checkpointPieces, mergeStatementOf } from '../operator/store/federation.js';
import { WEIGHTS_FILE } from '../operator/git/names.js';
import { lfsObjectPath } from '../operator/lfs/object-store.js';
import { parsePointer } from '../operator/lfs/pointer.js';
import type { Tensors } from '../operator/contracts.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'checkpoint-write-worker.js');
const author = { name: 'fedgit aggregator', email: 'aggregator@fedgit.invalid', timestamp: 1_700_000_000 };
const META = { planId: 'b'.repeat(40), round: 3, architecture: 'test/1' };

/** About 5 MB (above the one-call threshold): lengths that are no multiple of a stored block, an empty tensor, random values. */
function tensors(): Tensors {
  const random = (n: number) => new Float32Array(randomBytes(4 * n).buffer, 0, n);
  return new Map([
    ['conv.weight', { shape: [3, 417_001], data: random(3 * 417_001) }],
    ['bias', { shape: [70_001], data: random(70_001) }],
    ['empty', { shape: [0], data: new Float32Array(0) }],
  ]);
}

const commitOf = (repo: Repository, weights: Uint8Array | readonly Uint8Array[], lfs: boolean) =>
  repo.writeCommit({ files: { [WEIGHTS_FILE]: weights, 'metrics.json': Buffer.from('{}') }, parents: [], message: 'Round 3\n', author, ...(lfs ? { lfs: { minBytes: 0 } } : {}) });

for (const lfs of [false, true]) {
  test(`a checkpoint written from its pieces is the rendered file, byte for byte, ${lfs ? 'as an LFS object' : 'as a git blob'}`, async (t) => {
    const dir = await tempDir(t);
    const model = tensors();
    const rendered = checkpointBytes(model, META);
    const fromPieces = await Repository.ensureBare(path.join(dir, 'pieces.git'));
    const fromBuffer = await Repository.ensureBare(path.join(dir, 'buffer.git'));
    const commit = await commitOf(fromPieces, checkpointPieces(model, META), lfs);
    assert.equal(commit, await commitOf(fromBuffer, rendered, lfs), 'the same commit id as from the rendered buffer');
    const blob = execFileSync('git', ['--git-dir', fromPieces.gitdir, 'cat-file', 'blob', `${commit}:${WEIGHTS_FILE}`], { maxBuffer: 1 << 26 });
    const stored = lfs ? await readFile(lfsObjectPath(fromPieces.gitdir, parsePointer(blob, WEIGHTS_FILE).oid)) : blob;
    assert.ok(stored.equals(rendered));
    assert.ok((await fromPieces.readFile(commit, WEIGHTS_FILE)).equals(rendered));
    git(fromPieces.gitdir, 'fsck', '--strict');
    if (lfs) assert.match(execFileSync('git', ['--git-dir', fromPieces.gitdir, 'lfs', 'fsck', commit], { encoding: 'utf8' }), /Git LFS fsck OK/);
    const merge = { planId: META.planId, round: 3, parent: null, strategy: 'fedavg', merged: [] };
    assert.deepEqual(mergeStatementOf(merge, checkpointPieces(model, META)), mergeStatementOf(merge, rendered), 'the signed statement names the same SHA-256');
  });

  test(`a write that fails midway leaves no object behind and the branch where it was, ${lfs ? 'as an LFS object' : 'as a git blob'}`, async (t) => {
    const repo = await Repository.ensureBare(path.join(await tempDir(t), 'r.git'));
    const first = await commitOf(repo, Buffer.from('small'), false);
    await repo.updateRef('refs/heads/main', first, null);
    const before = await filesUnder(repo.gitdir);
    // A file-size limit of 6 MB: the 12 MB checkpoint's write stops halfway through (a short write, then EFBIG).
    const run = spawnSync('prlimit', [`--fsize=${6 * 1024 * 1024}`, process.execPath, WORKER, repo.gitdir, lfs ? 'lfs' : 'git', '12'], { encoding: 'utf8' });
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /short write|EFBIG/);
    assert.equal(await repo.readRef('refs/heads/main'), first);
    assert.deepEqual((await filesUnder(repo.gitdir)).filter((f) => !f.startsWith('lfs/tmp')), before, 'no new object, loose or LFS');
    assert.deepEqual((await filesUnder(repo.gitdir)).filter((f) => f.startsWith('lfs/tmp/')), [], 'no temporary file left');
    git(repo.gitdir, 'fsck', '--strict');
    const written = spawnSync(process.execPath, [WORKER, repo.gitdir, lfs ? 'lfs' : 'git', '12'], { encoding: 'utf8' });
    assert.equal(written.status, 0, written.stderr);
    assert.equal(await repo.readRef('refs/heads/main'), written.stdout.trim(), 'without the limit the same write succeeds');
  });
}

/** Every file under the folder, relative and sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}
