/**
 * The packs a server sends for a fetch, read by fedgit: native git's own packs (whole objects,
 * offset deltas, ref deltas, a thin pack) give back exactly the objects git reads, and a corrupt
 * or refused answer is an error, never a wrong object.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempDir } from './helpers/temp.js';
import { applyDelta, PackCorrupt, readPack } from '../operator/git/pack-reader.js';
import { objectId } from '../operator/git/objects.js';
import { packOfAnswer, requestedFetchCapabilities, UploadPackRefused, uploadPackRequest } from '../operator/remote/upload-pack.js';

const run = (cwd: string, args: string[], input?: Buffer) => execFileSync('git', args, { cwd, input, maxBuffer: 1 << 28 });

/** A work tree with five commits of a slowly changing 200 KB file (git deltas those) and a random one. */
async function history(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  run(dir, ['init', '-q']);
  const text = Array.from({ length: 4000 }, (_, i) => `line ${i} ${'x'.repeat(40)}`);
  const commits: string[] = [];
  for (let c = 0; c < 5; c++) {
    text[c * 700] = `changed in commit ${c}`;
    execFileSync('bash', ['-c', 'cat > weights.txt'], { cwd: dir, input: text.join('\n') });
    execFileSync('bash', ['-c', 'cat > random.bin'], { cwd: dir, input: randomBytes(30_000) });
    run(dir, ['add', '.']);
    run(dir, ['-c', 'user.name=x', '-c', 'user.email=x@y', 'commit', '-q', '-m', `c${c}`]);
    commits.push(run(dir, ['rev-parse', 'HEAD']).toString().trim());
  }
  return { dir, gitdir: path.join(dir, '.git'), commits };
}

function assertSameObjects(gitdir: string, objects: ReadonlyArray<{ type: string; content: Buffer }>, expected: readonly string[]) {
  const ids = objects.map((o) => objectId(o.type as 'blob', o.content));
  assert.deepEqual(new Set(ids), new Set(expected), 'the objects git put in the pack');
  for (const [i, o] of objects.entries()) {
    assert.equal(o.type, run(gitdir, ['cat-file', '-t', ids[i]!]).toString().trim());
    assert.ok(o.content.equals(run(gitdir, ['cat-file', o.type, ids[i]!])));
  }
}

test('native git\'s packs, with offset deltas and with ref deltas, read back to the objects git reads', async (t) => {
  const { gitdir, commits } = await history(t);
  const listed = run(gitdir, ['rev-list', '--objects', commits.at(-1)!]).toString().trim().split('\n').map((l) => l.split(' ')[0]!);
  for (const flags of [['--delta-base-offset'], []]) {
    const pack = run(gitdir, ['pack-objects', '--stdout', '--revs', '--window=10', ...flags], Buffer.from(`${commits.at(-1)}\n`));
    const objects = await readPack(pack, () => Promise.reject(new Error('no base needed')));
    assertSameObjects(gitdir, objects, listed);
    // The 200 KB file changed a line per commit: git stored most of its versions as deltas.
    const file = path.join(path.dirname(gitdir), `check${flags.length}.pack`);
    execFileSync('bash', ['-c', `cat > ${file}`], { input: pack });
    run(gitdir, ['index-pack', file]);
    const deltas = run(gitdir, ['verify-pack', '-v', file.replace(/\.pack$/, '.idx')]).toString().split('\n').filter((l) => /^[0-9a-f]{40} \w+ +\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(l));
    assert.ok(deltas.length >= 3, `deltas in the pack (${flags.join(' ') || 'ref deltas'}): ${deltas.length}`);
  }
});

test('a thin pack\'s deltas against objects outside it are resolved from the repository', async (t) => {
  const { gitdir, commits } = await history(t);
  const pack = run(gitdir, ['pack-objects', '--stdout', '--revs', '--thin', '--delta-base-offset'], Buffer.from(`${commits[4]}\n^${commits[2]}\n`));
  const asked: string[] = [];
  const objects = await readPack(pack, async (oid) => {
    asked.push(oid);
    return { type: run(gitdir, ['cat-file', '-t', oid]).toString().trim() as 'blob', content: run(gitdir, ['cat-file', 'blob', oid]) };
  });
  const wanted = run(gitdir, ['rev-list', '--objects', commits[4]!, `^${commits[2]}`]).toString().trim().split('\n').map((l) => l.split(' ')[0]!);
  const inPack = objects.map((o) => objectId(o.type, o.content));
  for (const oid of wanted) assert.ok(inPack.includes(oid), `${oid} read`);
  assert.ok(asked.length > 0, 'at least one base came from outside the pack');
});

test('a corrupt pack is refused, never read to wrong objects', async (t) => {
  const { gitdir, commits } = await history(t);
  const pack = run(gitdir, ['pack-objects', '--stdout', '--revs', '--delta-base-offset'], Buffer.from(`${commits[1]}\n`));
  const none = () => Promise.reject(new Error('no base'));
  const flipped = Buffer.from(pack);
  flipped[100] = flipped[100]! ^ 0xff;
  await assert.rejects(readPack(flipped, none), PackCorrupt, 'a changed byte fails the checksum');
  await assert.rejects(readPack(pack.subarray(0, pack.length - 1), none), PackCorrupt, 'a cut pack');
  await assert.rejects(readPack(Buffer.from('not a pack at all, but long enough to look'), none), PackCorrupt);
  assert.throws(() => applyDelta(Buffer.from('abc'), Buffer.from([3, 5, 0x91, 0, 5])), PackCorrupt, 'a copy past the base');
  assert.throws(() => applyDelta(Buffer.from('abc'), Buffer.from([4, 1, 1, 0x61])), PackCorrupt, 'a delta for another base');
  assert.deepEqual(applyDelta(Buffer.from('hello world'), Buffer.from([11, 8, 0x91, 6, 5, 3, 0x21, 0x21, 0x21])).toString(), 'world!!!');
});

test('the upload-pack exchange: what is asked for, and the pack or the refusal in the answer', () => {
  assert.equal(requestedFetchCapabilities('multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag agent=git/2.39.5'), 'side-band-64k ofs-delta agent=fedgit');
  assert.equal(requestedFetchCapabilities('multi_ack'), 'agent=fedgit');
  const want = 'a'.repeat(40);
  const have = 'b'.repeat(40);
  assert.equal(uploadPackRequest([want], [have], 'ofs-delta agent=fedgit').toString(), `0049want ${want} ofs-delta agent=fedgit\n00000032have ${have}\n0009done\n`);
  assert.throws(() => uploadPackRequest([], [], ''));
  const pkt = (payload: Buffer) => Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
  const band = (n: number, text: string | Buffer) => pkt(Buffer.concat([Buffer.from([n]), Buffer.from(text)]));
  const pack = Buffer.from('PACK....rest of the pack');
  assert.deepEqual(packOfAnswer(Buffer.concat([pkt(Buffer.from('NAK\n')), band(2, 'Counting objects\r'), band(1, pack.subarray(0, 10)), band(1, pack.subarray(10)), Buffer.from('0000')]), true), pack);
  assert.deepEqual(packOfAnswer(Buffer.concat([pkt(Buffer.from(`ACK ${have}\n`)), pack]), false), pack);
  assert.throws(() => packOfAnswer(pkt(Buffer.from(`ERR upload-pack: not our ref ${want}`)), true), (e: Error) => e instanceof UploadPackRefused && e.message === `upload-pack: not our ref ${want}`);
  assert.throws(() => packOfAnswer(Buffer.concat([pkt(Buffer.from('NAK\n')), band(3, 'the repository is gone')]), true), UploadPackRefused);
  assert.throws(() => packOfAnswer(pkt(Buffer.from('NAK\n')), true), /no pack/);
});
