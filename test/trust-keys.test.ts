import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { fingerprint, generateKeyPair, parsePrivateKey, parsePublicKey, publicKeyOf, readPrivateKey, writePrivateKey } from '../operator/trust/keys.js';
import { tempDir } from './helpers/temp.js';

test('a key pair: the public key is ed25519: and base64 of 32 raw bytes, and belongs to the private key', () => {
  const pair = generateKeyPair();
  assert.match(pair.publicKey, /^ed25519:[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(pair.publicKey.slice(8), 'base64').length, 32);
  assert.match(pair.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(publicKeyOf(parsePrivateKey(pair.privateKeyPem)), pair.publicKey);
  assert.notEqual(generateKeyPair().publicKey, pair.publicKey);
});

test('fingerprints are sha256: and 16 hex digits, the same for the text and the key object', () => {
  const pair = generateKeyPair();
  const fp = fingerprint(pair.publicKey);
  assert.match(fp, /^sha256:[0-9a-f]{16}$/);
  assert.equal(fingerprint(parsePublicKey(pair.publicKey)), fp);
  assert.equal(fingerprint(parsePrivateKey(pair.privateKeyPem)), fp);
  assert.notEqual(fingerprint(generateKeyPair().publicKey), fp);
});

test('a bad public key is refused with an error that shows only its first characters', () => {
  const secretish = 'ed25519:' + 'Q'.repeat(200);
  const cases: Array<[string, RegExp]> = [
    ['', /does not start with 'ed25519:'/],
    ['rsa:AAAA', /does not start with 'ed25519:'/],
    ['ed25519:abc', /not base64 of 32 bytes/],
    [secretish, /not base64 of 32 bytes/],
    [generateKeyPair().publicKey.replace(/.=$/, 'B='), /not base64 of 32 bytes/],
    [generateKeyPair().privateKeyPem, /does not start with/],
  ];
  for (const [text, reason] of cases) {
    assert.throws(() => parsePublicKey(text), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KEY_INVALID');
      assert.match(e.message, reason);
      assert.ok(!e.message.includes(text.slice(0, 30)) || text.length <= 12, `message shows too much of ${text.slice(0, 20)}: ${e.message}`);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  }
  const pem = generateKeyPair().privateKeyPem;
  assert.throws(() => parsePublicKey(pem), (e: Error) => !e.message.includes(pem.split('\n')[1]!.slice(0, 16)));
});

test('a private key file is written with mode 0600 and read back', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'keys', 'edge-a.pem');
  const pair = generateKeyPair();
  await writePrivateKey(file, pair.privateKeyPem);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
  assert.equal(publicKeyOf(await readPrivateKey(file)), pair.publicKey);
});

test('writing never overwrites an existing file', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'edge-a.pem');
  await writeFile(file, 'precious');
  await assert.rejects(writePrivateKey(file, generateKeyPair().privateKeyPem), { code: 'KEY_FILE_REFUSED', message: /already exists.*never overwrites/ });
  assert.equal(await readFile(file, 'utf8'), 'precious');
});

test('a key file that group or others can access is refused, naming the file and chmod 600', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'edge-a.pem');
  await writePrivateKey(file, generateKeyPair().privateKeyPem);
  for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
    await chmod(file, mode);
    await assert.rejects(readPrivateKey(file), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KEY_FILE_REFUSED');
      assert.ok(e.message.includes(file), e.message);
      assert.ok(e.message.includes(`chmod 600 ${file}`), e.message);
      assert.ok(e.message.includes(`0${mode.toString(8)}`), e.message);
      return true;
    });
  }
  await chmod(file, 0o400);
  await readPrivateKey(file);
});

test('reading refuses a missing file, a folder, non-PEM text and keys that are not Ed25519, without showing the content', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(readPrivateKey(path.join(dir, 'missing.pem')), { code: 'KEY_FILE_REFUSED', message: /ENOENT/ });
  await assert.rejects(readPrivateKey(dir), { code: 'KEY_FILE_REFUSED' });

  const garbage = path.join(dir, 'garbage.pem');
  await writeFile(garbage, 'hunter2 is my password\n', { mode: 0o600 });
  await assert.rejects(readPrivateKey(garbage), (e: Error & { code?: string }) => e.code === 'KEY_INVALID' && !e.message.includes('hunter2') && e.message.includes(garbage));

  const rsa = path.join(dir, 'rsa.pem');
  const rsaPem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  await writeFile(rsa, rsaPem, { mode: 0o600 });
  await assert.rejects(readPrivateKey(rsa), { code: 'KEY_INVALID', message: /is a rsa key; fedgit needs an Ed25519 key/ });

  const x25519 = path.join(dir, 'x25519.pem');
  await writeFile(x25519, generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), { mode: 0o600 });
  await assert.rejects(readPrivateKey(x25519), { code: 'KEY_INVALID', message: /x25519/ });

  await assert.rejects(writePrivateKey(path.join(dir, 'rsa-out.pem'), rsaPem), { code: 'KEY_INVALID' });
  await assert.rejects(stat(path.join(dir, 'rsa-out.pem')), { code: 'ENOENT' });
});
