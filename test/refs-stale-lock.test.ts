/**
 * Breaking a stale lock keeps the compare-and-swap guarantee: many processes race on one ref
 * while locks "left by killed writers" keep appearing, so several writers find the same stale
 * lock at once and break it together. Every update a writer was told succeeded must be in the
 * ref's history of values, in one unbroken chain; none may be lost to another writer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { open, utimes, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tempDir, sleep } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { readRef } from '../operator/git/refs.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'stale-lock-worker.js');
const WRITERS = 6;
const UPDATES_EACH = 60;

function runWriter(gitdir: string, ref: string, id: string): Promise<Array<[string | null, string]>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, gitdir, ref, id, String(UPDATES_EACH)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Array<[string | null, string]>) : reject(new Error(`writer ${id} exited ${code}`))));
  });
}

test(`${WRITERS} processes × ${UPDATES_EACH} updates with stale locks injected: every acknowledged update is in one unbroken chain`, { timeout: 240_000 }, async (t) => {
  const gitdir = path.join(await tempDir(t), 'r.git');
  await Repository.ensureBare(gitdir);
  const ref = 'refs/heads/main';
  const lockFile = path.join(gitdir, 'refs', 'heads', 'main.lock');
  let writersDone = false;
  let injected = 0;
  // A lock "left by a killed writer": created while no writer holds the lock, dated a minute back.
  const injector = (async () => {
    while (!writersDone) {
      try {
        const handle = await open(lockFile, 'wx');
        await handle.close();
        const past = new Date(Date.now() - 60_000);
        await utimes(lockFile, past, past);
        injected++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      await sleep(3);
    }
  })();
  const results = await Promise.all(Array.from({ length: WRITERS }, (_, i) => runWriter(gitdir, ref, `w${i}`)));
  writersDone = true;
  await injector;

  const acknowledged = results.flat();
  assert.equal(acknowledged.length, WRITERS * UPDATES_EACH);
  const following = new Map<string | null, string>();
  for (const [expected, next] of acknowledged) {
    assert.ok(!following.has(expected), `two writers were both told they moved the ref from ${expected}`);
    following.set(expected, next);
  }
  let value: string | null = null;
  let length = 0;
  while (following.has(value)) {
    value = following.get(value)!;
    length++;
  }
  assert.equal(length, acknowledged.length, 'every acknowledged update is in the chain from the first value');
  assert.equal(await readRef(gitdir, ref), value, 'the ref ends at the last acknowledged value');
  console.log(`refs-stale-lock: ${acknowledged.length} acknowledged updates by ${WRITERS} processes, ${injected} stale locks injected and broken, chain unbroken`);
  assert.ok(injected >= 20, `only ${injected} stale locks were injected: the test did not exercise breaking`);
  const leftovers = (await readdir(path.join(gitdir, 'refs', 'heads'))).filter((n) => n.includes('.break-'));
  assert.deepEqual(leftovers, [], 'no break claims left behind');
});
