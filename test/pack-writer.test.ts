/**
 * The packs fedgit writes for a push: native git indexes them and finds the same objects, they
 * carry only what the server does not hold, and the receive-pack report is read as git writes it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempDir, git } from './helpers/temp.js';
import { Repository } from '../operator/git/repository.js';
import { entryHeader, objectsToSend, writePack } from '../operator/git/pack-writer.js';
import { parseReport, receivePackRequest, requestedCapabilities } from '../operator/remote/receive-pack.js';

const author = { name: 'x', email: 'x@y', timestamp: 1 };
const pkt = (text: string) => `${(Buffer.byteLength(text) + 4).toString(16).padStart(4, '0')}${text}`;

test('an entry header holds the type and the size, 4 bits then 7 bits at a time', () => {
  assert.deepEqual([...entryHeader(3, 15)], [0x3f]);
  assert.deepEqual([...entryHeader(3, 16)], [0xb0, 0x01]);
  assert.deepEqual([...entryHeader(1, 1_000_000)], [0x90, 0xa4, 0xe8, 0x03]);
  assert.deepEqual([...entryHeader(3, 2 ** 33 + 5)], [0xb5, 0x80, 0x80, 0x80, 0x80, 0x02], 'sizes past 32 bits');
});

test('a push pack carries the new commits and what their trees add, and native git indexes it to the same objects', async (t) => {
  const dir = await tempDir(t);
  const repo = await Repository.ensureBare(path.join(dir, 'repo.git'));
  const plan = Buffer.from('name: x\n');
  const weights = (seed: number, bytes: number) => (seed === 0 ? randomBytes(bytes) : Buffer.alloc(bytes, seed)); // incompressible, then compressible
  const first = await repo.writeCommit({ files: { 'plan.yaml': plan, 'weights.bin': weights(0, 200_000) }, parents: [], message: 'one\n', author });
  const second = await repo.writeCommit({ files: { 'plan.yaml': plan, 'weights.bin': weights(7, 300_000), 'note.txt': Buffer.from('n') }, parents: [first], message: 'two\n', author });
  const third = await repo.writeCommit({ files: { 'plan.yaml': plan, 'weights.bin': weights(0, 100_000), 'note.txt': Buffer.from('n') }, parents: [second], message: 'three\n', author });

  const objects = (await objectsToSend(repo.gitdir, third, new Set([first])))!;
  const treeOf = (c: string) => git(repo.gitdir, 'rev-parse', `${c}^{tree}`).trim();
  const blobOf = (c: string, name: string) => git(repo.gitdir, 'rev-parse', `${c}:${name}`).trim();
  assert.deepEqual(new Set(objects), new Set([third, second, treeOf(third), treeOf(second), blobOf(third, 'weights.bin'), blobOf(second, 'weights.bin'), blobOf(second, 'note.txt')]),
    'the two commits, their trees, and the blobs the held commit does not have (plan.yaml it has)');

  const target = path.join(dir, 'target.git');
  execFileSync('git', ['init', '-q', '--bare', target]);
  const pack = Buffer.concat(await writePack(repo.gitdir, objects));
  // (Not --strict: the pack is thin by design, what the held commit reaches is on the server already.)
  execFileSync('git', ['--git-dir', target, 'index-pack', '--stdin'], { input: pack });
  for (const oid of objects) {
    assert.ok(execFileSync('git', ['--git-dir', target, 'cat-file', '-p', oid], { maxBuffer: 1 << 26 }).equals(execFileSync('git', ['--git-dir', repo.gitdir, 'cat-file', '-p', oid], { maxBuffer: 1 << 26 })), `object ${oid} as git reads it`);
  }
  assert.ok(pack.length < 200_000 + 100_000 + 4096, 'the compressible blob was deflated, the random ones stored');

  assert.equal(await objectsToSend(repo.gitdir, third, new Set([third])).then((o) => o?.length), 0, 'nothing to send for what the server holds');
  assert.equal(await objectsToSend(repo.gitdir, third, new Set(['f'.repeat(40)])), undefined, 'a history that reaches nothing the server holds is not packed here');
  assert.equal(await objectsToSend(repo.gitdir, third, new Set([first]), 1), undefined, 'nor one longer than the bound');
});

test('the receive-pack report: success, a refused ref, a failed unpack, a fatal error on the side band', () => {
  const sideBand = (band: number, text: string) => {
    const payload = Buffer.concat([Buffer.from([band]), Buffer.from(text)]);
    return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
  };
  const status = (...lines: string[]) => `${lines.map((l) => pkt(`${l}\n`)).join('')}0000`;
  const ok = status('unpack ok', 'ok refs/heads/fedgit/p');
  assert.deepEqual(parseReport(Buffer.from(ok), false), { ok: true });
  assert.deepEqual(parseReport(Buffer.concat([sideBand(2, 'Resolving deltas\r'), sideBand(1, ok), Buffer.from('0000')]), true), { ok: true });
  assert.deepEqual(parseReport(Buffer.from(status('unpack ok', 'ng refs/heads/fedgit/p failed to update ref')), false), { ok: false, reason: 'failed to update ref' });
  assert.deepEqual(parseReport(Buffer.from(status('unpack index-pack abnormal exit', 'ng refs/heads/fedgit/p unpacker error')), false), { ok: false, reason: 'index-pack abnormal exit' });
  assert.deepEqual(parseReport(Buffer.concat([sideBand(3, 'pre-receive hook declined'), Buffer.from('0000')]), true), { ok: false, reason: 'pre-receive hook declined' });
  assert.throws(() => parseReport(Buffer.from('zzzz'), false), /not in pkt-lines/);
});

test('a push asks only for capabilities the server announced, and needs report-status', () => {
  assert.equal(requestedCapabilities('report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta agent=git/2.39.5'), 'report-status side-band-64k agent=fedgit');
  assert.equal(requestedCapabilities('report-status delete-refs'), 'report-status agent=fedgit');
  assert.equal(requestedCapabilities('delete-refs side-band-64k'), undefined);
  const [command, flush] = receivePackRequest({ ref: 'refs/heads/x', expected: 'a'.repeat(40), next: 'b'.repeat(40) }, 'report-status agent=fedgit', []);
  assert.equal(command!.toString('latin1'), pkt(`${'a'.repeat(40)} ${'b'.repeat(40)} refs/heads/x\0report-status agent=fedgit\n`));
  assert.equal(flush!.toString('latin1'), '0000');
});
