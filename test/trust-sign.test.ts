import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, parsePrivateKey, parsePublicKey } from '../operator/trust/keys.js';
import { sign, verify, verificationFailure } from '../operator/trust/sign.js';
import { renderEdgeStatement, renderMergeStatement, sha256Hex, type EdgeStatement, type MergeStatement } from '../operator/trust/statements.js';

const oid = (c: string) => c.repeat(40);
const edgeStatement: EdgeStatement = {
  planId: oid('a'),
  round: 3,
  edge: 'hospital-a',
  base: oid('b'),
  weightsSha256: sha256Hex('weights'),
  datasetSize: 120,
  architecture: 'aspects-cnn/v1',
};
const mergeStatement: MergeStatement = {
  planId: oid('a'),
  round: 4,
  parent: oid('c'),
  weightsSha256: sha256Hex('merged'),
  strategy: 'fedavg',
  merged: [
    { edge: 'hospital-a', commit: oid('d'), datasetSize: 120, weight: 0.6 },
    { edge: 'hospital-b', commit: oid('e'), datasetSize: 80, weight: 0.4 },
  ],
};

const alice = generateKeyPair();
const mallory = generateKeyPair();
const aliceKey = parsePrivateKey(alice.privateKeyPem);

test('a signature verifies against the signer key, as a key object or as the plan text', () => {
  const text = renderEdgeStatement(edgeStatement);
  const signature = sign(text, aliceKey);
  assert.match(signature, /^ed25519:[A-Za-z0-9+/]{86}==$/);
  assert.equal(verify(text, signature, alice.publicKey), true);
  assert.equal(verify(text, signature, parsePublicKey(alice.publicKey)), true);
  assert.equal(verificationFailure(text, signature, alice.publicKey), undefined);
  assert.equal(sign(text, aliceKey), signature, 'Ed25519 signatures are deterministic');
});

test('an edge signature does not cover a statement that differs in any single field', () => {
  const signature = sign(renderEdgeStatement(edgeStatement), aliceKey);
  const changes: Array<Partial<EdgeStatement>> = [
    { planId: oid('f') },
    { round: 4 },
    { edge: 'hospital-b' },
    { base: oid('c') },
    { weightsSha256: sha256Hex('other weights') },
    { datasetSize: 121 },
    { architecture: 'aspects-cnn/v2' },
  ];
  for (const change of changes) {
    const text = renderEdgeStatement({ ...edgeStatement, ...change });
    assert.equal(verify(text, signature, alice.publicKey), false, `changed ${Object.keys(change)[0]}`);
    assert.match(verificationFailure(text, signature, alice.publicKey)!, /does not match/);
  }
});

test('a merge signature does not cover a statement that differs in any field, order or entry', () => {
  const signature = sign(renderMergeStatement(mergeStatement), aliceKey);
  assert.equal(verify(renderMergeStatement(mergeStatement), signature, alice.publicKey), true);
  const [a, b] = mergeStatement.merged as [MergeStatement['merged'][0], MergeStatement['merged'][0]];
  const changes: Array<Partial<MergeStatement>> = [
    { planId: oid('f') },
    { round: 5 },
    { parent: oid('f') },
    { parent: null },
    { weightsSha256: sha256Hex('x') },
    { strategy: 'fedmedian' },
    { merged: [b, a] },
    { merged: [a] },
    { merged: [a, b, { edge: 'hospital-c', commit: oid('f'), datasetSize: 1, weight: 0 }] },
    { merged: [{ ...a, commit: oid('f') }, b] },
    { merged: [{ ...a, datasetSize: 121 }, b] },
    { merged: [{ ...a, weight: 0.61 }, b] },
    { merged: [a, { ...b, edge: 'hospital-c' }] },
  ];
  for (const change of changes) {
    assert.equal(verify(renderMergeStatement({ ...mergeStatement, ...change }), signature, alice.publicKey), false, JSON.stringify(change));
  }
});

test('an edge signature is not a merge signature and the other way round', () => {
  const edgeText = renderEdgeStatement(edgeStatement);
  const mergeText = renderMergeStatement(mergeStatement);
  assert.equal(verify(mergeText, sign(edgeText, aliceKey), alice.publicKey), false);
  assert.equal(verify(edgeText, sign(mergeText, aliceKey), alice.publicKey), false);
});

test('a signature by another key fails, and so does a key that signs someone else\'s statement', () => {
  const text = renderEdgeStatement(edgeStatement);
  const forged = sign(text, parsePrivateKey(mallory.privateKeyPem));
  assert.equal(verify(text, forged, alice.publicKey), false);
  assert.equal(verify(text, sign(text, aliceKey), mallory.publicKey), false);
});

test('malformed signatures return false with a reason, never throw', () => {
  const text = renderEdgeStatement(edgeStatement);
  const good = sign(text, aliceKey);
  const raw = Buffer.from(good.slice('ed25519:'.length), 'base64');
  const flipped = Buffer.from(raw);
  flipped[10] = flipped[10]! ^ 1;
  const cases: Array<[unknown, RegExp]> = [
    [undefined, /no signature/],
    [null, /not a string/],
    [42, /not a string/],
    ['', /does not start with 'ed25519:'/],
    [good.slice('ed25519:'.length), /does not start with/],
    ['rsa:' + good.slice(8), /does not start with/],
    ['ed25519:', /not base64 of 64 bytes/],
    ['ed25519:!!!!', /not base64 of 64 bytes/],
    [good.slice(0, -4), /not base64 of 64 bytes/],
    [good + 'AAAA', /not base64 of 64 bytes/],
    [good + '\n', /not base64 of 64 bytes/],
    ['ed25519:' + raw.subarray(0, 63).toString('base64'), /not base64 of 64 bytes/],
    ['ed25519:' + Buffer.alloc(64).toString('base64'), /does not match/],
    ['ed25519:' + flipped.toString('base64'), /does not match/],
    ['ed25519:' + raw.toString('base64url'), /not base64/],
  ];
  for (const [signature, reason] of cases) {
    assert.equal(verify(text, signature, alice.publicKey), false, String(signature));
    assert.match(verificationFailure(text, signature, alice.publicKey)!, reason, String(signature));
  }
});

test('a malformed public key makes verification fail with a reason, never throw', () => {
  const text = renderEdgeStatement(edgeStatement);
  const signature = sign(text, aliceKey);
  for (const key of ['', 'ed25519:', 'ed25519:abc', alice.publicKey.slice(8), alice.publicKey + 'A', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI']) {
    assert.equal(verify(text, signature, key), false, key);
    assert.match(verificationFailure(text, signature, key)!, /public key/);
  }
  assert.equal(verify(text, signature, aliceKey), false, 'a private key object is not accepted as the key to check against');
});

test('signing refuses what is not an Ed25519 private key', () => {
  assert.throws(() => sign('x', parsePublicKey(alice.publicKey)), { code: 'KEY_INVALID' });
});
