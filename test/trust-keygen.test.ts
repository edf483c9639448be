import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { keygen, renderKeygen } from '../operator/commands/keygen.js';
import { fingerprint, publicKeyOf, readPrivateKey } from '../operator/trust/keys.js';
import { sign, verify } from '../operator/trust/sign.js';
import { tempDir } from './helpers/temp.js';

test('keygen writes a 0600 private key and returns only public facts', async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'edge-a.pem');
  const result = await keygen({ out, name: 'hospital-a' });
  assert.equal(result.file, out);
  assert.equal((await stat(out)).mode & 0o777, 0o600);
  assert.match(result.publicKey, /^ed25519:[A-Za-z0-9+/]{43}=$/);
  assert.equal(result.fingerprint, fingerprint(result.publicKey));
  assert.equal(result.snippet, `- name: hospital-a\n  publicKey: ${result.publicKey}\n`);

  const key = await readPrivateKey(out);
  assert.equal(publicKeyOf(key), result.publicKey);
  assert.ok(verify('hello', sign('hello', key), result.publicKey));

  const pem = await readFile(out, 'utf8');
  const body = pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  const shown = JSON.stringify(result) + renderKeygen(result);
  assert.ok(!shown.includes('PRIVATE KEY'));
  assert.ok(!shown.includes(body));
  for (let i = 0; i + 16 <= body.length; i += 4) assert.ok(!shown.includes(body.slice(i, i + 16)), 'no piece of the private key is returned or printed');
  assert.match(renderKeygen(result), /never commit it/);
});

test('keygen without a name gives the bare plan line', async (t) => {
  const dir = await tempDir(t);
  const result = await keygen({ out: path.join(dir, 'aggregator.pem') });
  assert.equal(result.snippet, `publicKey: ${result.publicKey}\n`);
});

test('keygen refuses to overwrite an existing key', async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'edge-a.pem');
  const first = await keygen({ out });
  const before = await readFile(out, 'utf8');
  await assert.rejects(keygen({ out }), { code: 'KEY_FILE_REFUSED', message: /already exists/ });
  assert.equal(await readFile(out, 'utf8'), before);
  assert.equal(publicKeyOf(await readPrivateKey(out)), first.publicKey);
});

test('keygen refuses to write inside a git working tree or a bare repository unless allowed', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'work', '.git'), { recursive: true });
  await assert.rejects(keygen({ out: path.join(dir, 'work', 'keys', 'edge-a.pem') }), { code: 'KEY_FILE_REFUSED', message: /inside the git repository/ });
  await assert.rejects(stat(path.join(dir, 'work', 'keys')), { code: 'ENOENT' });

  await mkdir(path.join(dir, 'global.git', 'objects'), { recursive: true });
  await writeFile(path.join(dir, 'global.git', 'HEAD'), 'ref: refs/heads/main\n');
  await assert.rejects(keygen({ out: path.join(dir, 'global.git', 'key.pem') }), { code: 'KEY_FILE_REFUSED' });

  const allowed = await keygen({ out: path.join(dir, 'work', 'edge-a.pem'), allowInsideGitRepository: true });
  assert.equal((await stat(allowed.file)).mode & 0o777, 0o600);
});

test('keygen refuses a name that could break the YAML snippet', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(keygen({ out: path.join(dir, 'k.pem'), name: 'a\npublicKey: ed25519:evil' }), { code: 'USAGE' });
  await assert.rejects(stat(path.join(dir, 'k.pem')), { code: 'ENOENT' });
});
