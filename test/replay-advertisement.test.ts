/** Ref advertisements fedgit answers fetches and pushes with (operator/remote/replay-advertisement.ts): pure parts and the client wrappers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { withHeadAdvertised } from '../operator/remote/advertise-head.js';
import { advertisedCapabilities, recordAdvertisement, renderReceivePackAdvertisement, renderUploadPackAdvertisement, replayAdvertisement } from '../operator/remote/replay-advertisement.js';

const OID = 'a'.repeat(40);
// What git http-backend 2.39 answers for a repository with one branch (the test git server, captured).
const RECEIVE_PACK = Buffer.from(`001f# service=git-receive-pack\n000000ae${'2c95403a045cb563f6692deb38c3c47574a6c34d'} refs/heads/x\0report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta object-format=sha1 agent=git/2.39.5\n0000`, 'latin1');

async function text(body: AsyncIterableIterator<Uint8Array> | undefined): Promise<string> {
  const chunks: Uint8Array[] = [];
  if (body) for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks).toString('latin1');
}

/** A server that answers every request with `body` and counts what it was asked. */
function fakeServer(body: string): HttpClient & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      asked.push(`${req.method} ${req.url}`);
      return { url: req.url, method: req.method ?? 'GET', statusCode: 200, statusMessage: 'OK', headers: { 'content-type': 'application/x-git-upload-pack-advertisement' }, body: (async function* () { yield Buffer.from(body); })() };
    },
  };
}

test('the capabilities a server announced are read from its advertisement', () => {
  assert.equal(advertisedCapabilities(RECEIVE_PACK), 'report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta object-format=sha1 agent=git/2.39.5');
  assert.equal(advertisedCapabilities(Buffer.from('001f# service=git-receive-pack\n00000000')), undefined, 'no ref line, no capabilities');
  assert.equal(advertisedCapabilities(Buffer.from('zzzz')), undefined, 'not pkt-lines');
});

test('a rendered receive-pack advertisement names only the ref at the value the push replaces', () => {
  const caps = advertisedCapabilities(RECEIVE_PACK)!;
  const rendered = renderReceivePackAdvertisement('refs/heads/fedgit/p-00000000', OID, caps);
  assert.equal(rendered.toString('latin1'), `001f# service=git-receive-pack\n0000${(4 + 41 + 'refs/heads/fedgit/p-00000000'.length + 1 + caps.length + 1).toString(16).padStart(4, '0')}${OID} refs/heads/fedgit/p-00000000\0${caps}\n0000`);
  assert.equal(advertisedCapabilities(rendered), caps, 'and reads back as the server’s own');
  assert.throws(() => renderReceivePackAdvertisement('refs/heads/x', 'not-an-oid', caps));
  assert.throws(() => renderReceivePackAdvertisement('refs/heads/x y', OID, caps));
  assert.throws(() => renderReceivePackAdvertisement('refs/heads/x', OID, 'report-status\n0000'), 'a capability line cannot smuggle pkt-lines');
});

test('a rendered upload-pack advertisement names the refs in git\'s order, the capabilities on the first', () => {
  const caps = 'multi_ack thin-pack side-band-64k ofs-delta shallow no-progress include-tag agent=git/2.39.5';
  const other = 'b'.repeat(40);
  const rendered = renderUploadPackAdvertisement(new Map([['refs/tags/t', other], ['refs/heads/fedgit/p-00000000', OID]]), caps);
  const line = (text: string) => `${(4 + text.length).toString(16).padStart(4, '0')}${text}`;
  assert.equal(rendered.toString('latin1'), `001e# service=git-upload-pack\n0000${line(`${OID} refs/heads/fedgit/p-00000000\0${caps}\n`)}${line(`${other} refs/tags/t\n`)}0000`);
  assert.equal(advertisedCapabilities(rendered), caps);
  assert.throws(() => renderUploadPackAdvertisement(new Map(), caps), 'no refs');
  assert.throws(() => renderUploadPackAdvertisement(new Map([['refs/heads/x y', OID]]), caps));
  assert.throws(() => renderUploadPackAdvertisement(new Map([['refs/heads/x', 'E'.repeat(40)]]), caps));
  assert.throws(() => renderUploadPackAdvertisement(new Map([['refs/heads/x', OID]]), 'thin-pack\n0000'));
});

test('a recorded upload-pack advertisement answers the same request again, nothing else', async () => {
  const server = fakeServer('advertisement');
  const url = 'https://git.example.org/global.git';
  const recorder = recordAdvertisement(server, 'git-upload-pack');
  assert.equal(await text((await recorder.http.request({ url: `${url}/info/refs?service=git-upload-pack`, method: 'GET' })).body), 'advertisement', 'the caller still gets the body');
  const replaying = replayAdvertisement(server, recorder.recorded());
  assert.equal(await text((await replaying.request({ url: `${url}/info/refs?service=git-upload-pack`, method: 'GET' })).body), 'advertisement');
  assert.equal(await text((await replaying.request({ url: `${url}/info/refs?service=git-upload-pack`, method: 'GET' })).body), 'advertisement', 'as often as asked');
  await replaying.request({ url: `${url}/git-upload-pack`, method: 'POST' });
  await replaying.request({ url: `${url}/info/refs?service=git-receive-pack`, method: 'GET' });
  await replaying.request({ url: `https://git.example.org/other.git/info/refs?service=git-upload-pack`, method: 'GET' });
  assert.deepEqual(server.asked, [
    `GET ${url}/info/refs?service=git-upload-pack`,
    `POST ${url}/git-upload-pack`,
    `GET ${url}/info/refs?service=git-receive-pack`,
    'GET https://git.example.org/other.git/info/refs?service=git-upload-pack',
  ]);
});

test('a HEAD line is added before the first ref of an upload-pack advertisement that has none, byte for byte', () => {
  const caps = 'multi_ack side-band-64k ofs-delta agent=git/2.39.5';
  const line = (text: string) => { const b = Buffer.from(text, 'utf8'); return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0')), b]); };
  const ref = 'refs/heads/fedgit/zürich-00000000'; // a name that is not ASCII: lengths are bytes
  const body = Buffer.concat([line('# service=git-upload-pack\n'), Buffer.from('0000'), line(`${OID} ${ref}\0${caps}\n`), Buffer.from('0000')]);
  const withHead = withHeadAdvertised(body);
  assert.ok(withHead.equals(Buffer.concat([line('# service=git-upload-pack\n'), Buffer.from('0000'), line(`${OID} HEAD\0${caps}\n`), line(`${OID} ${ref}\n`), Buffer.from('0000')])));
  assert.ok(withHeadAdvertised(withHead).equals(withHead), 'one that has a HEAD is left alone');
  assert.ok(withHeadAdvertised(Buffer.from('not pkt-lines')).equals(Buffer.from('not pkt-lines')));
});
