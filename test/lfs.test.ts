/**
 * Git LFS on one machine: pointer files parsed strictly, the local object store in git-lfs's own
 * layout (checked by `git lfs` itself), and a federation whose plan says `lfs: true` committing
 * pointers, reading weights through them, and passing audit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { parsePointer, renderPointer } from '../operator/lfs/pointer.js';
import { lfsObjectPath, readLfsObject, receiveLfsObject, sweepStaleLfsTemp, writeLfsObject } from '../operator/lfs/object-store.js';
import { Repository } from '../operator/git/repository.js';
import { CheckpointCorrupt, LfsObjectMissing, PlanInvalid } from '../operator/errors.js';
import { parsePlan } from '../operator/plan/plan.js';
import { auditCommit } from '../operator/commands/audit.js';
import { WEIGHTS_FILE } from '../operator/git/names.js';
import { startToyFederation } from './helpers/toy-federation.js';
import { whereUnder } from './helpers/chaos.js';
import { tempDir, toyPlan } from './helpers/temp.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const OID = sha256(Buffer.from('abc'));
const POINTER = `version https://git-lfs.github.com/spec/v1\noid sha256:${OID}\nsize 3\n`;
const author = { name: 't', email: 't@example.org', timestamp: 1_700_000_000 };

test('a pointer renders to the canonical three lines and parses back', () => {
  assert.equal(renderPointer({ oid: OID, size: 3 }).toString('utf8'), POINTER);
  assert.deepEqual(parsePointer(Buffer.from(POINTER), 'p'), { oid: OID, size: 3 });
});

for (const [what, text, reason] of [
  ['another version', POINTER.replace('spec/v1', 'spec/v2'), /first line/],
  ['an upper-case oid', POINTER.replace(OID, OID.toUpperCase()), /oid "sha256:[0-9A-F]+" is not sha256:<64 hex digits>/],
  ['a short oid', POINTER.replace(OID, OID.slice(1)), /is not sha256/],
  ['another hash', POINTER.replace('sha256:', 'sha1:'), /is not sha256/],
  ['no size', POINTER.replace('size 3\n', ''), /size "" is not a byte count/],
  ['a negative size', POINTER.replace('size 3', 'size -3'), /is not a byte count/],
  ['a size with leading zeros', POINTER.replace('size 3', 'size 03'), /is not a byte count/],
  ['keys out of order', `version https://git-lfs.github.com/spec/v1\nsize 3\noid sha256:${OID}\n`, /out of order/],
  ['an extension key', POINTER.replace('oid ', 'ext-0-foo sha256:00\noid '), /unsupported key ext-0-foo/],
  ['no final newline', POINTER.slice(0, -1), /no newline/],
  ['a control character', POINTER.replace('size 3', 'size 3\x1b[2J'), /"3\\u001b\[2J" is not a byte count/],
] as const) {
  test(`a pointer with ${what} is refused, naming the file`, () => {
    assert.throws(() => parsePointer(Buffer.from(text), 'weights.safetensors of abc'), (e: Error) => e instanceof CheckpointCorrupt && /^weights\.safetensors of abc: not a valid Git LFS pointer/.test(e.message) && reason.test(e.message) && !/\x1b/.test(e.message));
  });
}

test('objects live at lfs/objects/<aa>/<bb>/<oid>, are read back verified, and a damaged one is refused', async (t) => {
  const dir = await tempDir(t);
  const content = randomBytes(3 * 1024 * 1024 + 7);
  const pointer = await writeLfsObject(dir, content);
  assert.deepEqual(pointer, { oid: sha256(content), size: content.length });
  assert.equal(lfsObjectPath(dir, pointer.oid), `${dir}/lfs/objects/${pointer.oid.slice(0, 2)}/${pointer.oid.slice(2, 4)}/${pointer.oid}`);
  assert.ok((await readLfsObject(dir, pointer, 'w')).equals(content));
  const file = lfsObjectPath(dir, pointer.oid);
  const damaged = Buffer.from(content);
  damaged[12345] = damaged[12345]! ^ 1;
  await chmod(file, 0o644);
  await writeFile(file, damaged);
  await assert.rejects(readLfsObject(dir, pointer, 'weights.safetensors of x'), (e: Error) => e instanceof CheckpointCorrupt && /weights\.safetensors of x: LFS object [0-9a-f]{64} .* does not hash to its name: damaged on disk/.test(e.message));
  await writeFile(file, content.subarray(1));
  await assert.rejects(readLfsObject(dir, pointer, 'w'), /has 3145734 bytes, its pointer says 3145735/);
  await assert.rejects(readLfsObject(dir, { oid: OID, size: 3 }, 'w'), (e: Error) => e instanceof LfsObjectMissing && /^w: LFS object ba78[0-9a-f]{60} is not in this repository's store; a retention policy \(fedgit prune\) may have pruned it: restore it as .*\/lfs\/objects\/ba\/78\/ba78[0-9a-f]{60} \(docs\/lfs\.md\)$/.test(e.message));
});

test('an incoming object that does not match its pointer is not stored', async (t) => {
  const dir = await tempDir(t);
  const wrong = [Buffer.from('abd')];
  await assert.rejects(receiveLfsObject(dir, { oid: OID, size: 3 }, wrong, 'the server'), /from the server does not hash to its name/);
  await assert.rejects(receiveLfsObject(dir, { oid: OID, size: 3 }, [Buffer.from('abcd')], 'the server'), /longer than the 3 bytes/);
  await assert.rejects(receiveLfsObject(dir, { oid: OID, size: 3 }, [Buffer.from('ab')], 'the server'), /has 2 bytes, its pointer says 3/);
  await assert.rejects(readFile(lfsObjectPath(dir, OID)), { code: 'ENOENT' });
  assert.deepEqual(execFileSync('find', [dir, '-type', 'f'], { encoding: 'utf8' }), '', 'no temporary file is left behind');
});

test('temporary files a killed transfer left in lfs/tmp are swept once old, young ones are left to their writer', async (t) => {
  const dir = await tempDir(t);
  await mkdir(`${dir}/lfs/tmp`, { recursive: true });
  await writeFile(`${dir}/lfs/tmp/old`, 'x');
  await writeFile(`${dir}/lfs/tmp/young`, 'x');
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
  await utimes(`${dir}/lfs/tmp/old`, twoHoursAgo, twoHoursAgo);
  assert.deepEqual(await sweepStaleLfsTemp(dir), [`${dir}/lfs/tmp/old`]);
  assert.equal(await readFile(`${dir}/lfs/tmp/young`, 'utf8'), 'x');
});

test('a commit with an LFS policy holds a pointer that `git lfs` recognises, and reads back the real bytes', async (t) => {
  const dir = await tempDir(t);
  const repo = await Repository.ensureBare(`${dir}/r.git`);
  const weights = randomBytes(100_000);
  const small = randomBytes(10);
  const commit = await repo.writeCommit({ files: { [WEIGHTS_FILE]: weights, 'small.safetensors': small, 'metrics.json': Buffer.from('{}') }, parents: [], message: 'x\n', author, lfs: { minBytes: 1000 } });
  const show = (path: string) => execFileSync('git', ['--git-dir', repo.gitdir, 'show', `${commit}:${path}`]);
  assert.equal(show(WEIGHTS_FILE).toString('utf8'), renderPointer({ oid: sha256(weights), size: weights.length }).toString('utf8'));
  assert.ok(show('small.safetensors').equals(small), 'below minBytes: a plain blob');
  assert.equal(show('.gitattributes').toString('utf8'), '/weights.safetensors filter=lfs diff=lfs merge=lfs -text\n');
  assert.equal(execFileSync('git', ['--git-dir', repo.gitdir, 'lfs', 'ls-files', '-l', commit], { encoding: 'utf8' }), `${sha256(weights)} - ${WEIGHTS_FILE}\n`);
  // git lfs finds the object in the repository's own store, and it hashes to its name.
  assert.match(execFileSync('git', ['--git-dir', repo.gitdir, 'lfs', 'fsck', commit], { encoding: 'utf8' }), /Git LFS fsck OK/);
  assert.ok((await repo.readFile(commit, WEIGHTS_FILE)).equals(weights));
  assert.ok((await repo.readFile(commit, 'small.safetensors')).equals(small));
  await assert.rejects(repo.readFile(commit, WEIGHTS_FILE, { maxBytes: 99_999 }), /its LFS pointer announces 100000 bytes, more than the 99999 allowed here/);
  execFileSync('git', ['--git-dir', repo.gitdir, 'fsck', '--strict'], { stdio: 'pipe' });
});

test('the plan option: `lfs: true`, a size threshold, or a clear error', () => {
  const plan = (lfs: string) => parsePlan(`${toyPlan()}lfs: ${lfs}\n`, 'plan.yaml');
  assert.deepEqual(plan('true').lfs, { minBytes: 0 });
  assert.equal(plan('false').lfs, undefined);
  assert.deepEqual(plan('{ minBytes: 50000000 }').lfs, { minBytes: 50_000_000 });
  assert.equal(parsePlan(toyPlan(), 'plan.yaml').lfs, undefined);
  assert.throws(() => plan('yes'), (e: Error) => e instanceof PlanInvalid && /^plan\.yaml:\d+: lfs: /.test(e.message));
  assert.throws(() => plan('{ minBytes: -1 }'), (e: Error) => e instanceof PlanInvalid && /lfs\.minBytes/.test(e.message));
});

test('a local federation with `lfs: true` commits pointers, merges through them, and audits', async (t) => {
  const dir = await tempDir(t);
  const fed = await startToyFederation(dir, { rounds: 2, edges: ['hospital-a', 'hospital-b'], planYaml: `${toyPlan({ rounds: 2, minEdges: 2 })}lfs: true\n` });
  t.after(() => fed.close());
  const head = await fed.round();
  assert.equal(head.round, 1);
  for (const gitdir of [fed.where.global, ...Object.values(fed.where.edges)]) {
    const branch = execFileSync('git', ['--git-dir', gitdir, 'for-each-ref', '--format=%(refname)', 'refs/heads/fedgit/'], { encoding: 'utf8' }).trim();
    assert.match(execFileSync('git', ['--git-dir', gitdir, 'lfs', 'ls-files', '-l', branch], { encoding: 'utf8' }), /^[0-9a-f]{64} - weights\.safetensors$/m, `${gitdir}: the checkpoint is an LFS pointer`);
    assert.match(execFileSync('git', ['--git-dir', gitdir, 'lfs', 'fsck', branch], { encoding: 'utf8' }), /Git LFS fsck OK/, `${gitdir}: its object is in lfs/objects, intact`);
    execFileSync('git', ['--git-dir', gitdir, 'fsck', '--strict'], { stdio: 'pipe' });
  }
  const report = await auditCommit(whereUnder(fed.repos), fed.registries, head.oid);
  assert.ok(report.ok, JSON.stringify(report.checks.filter((c) => !c.ok)));
});
