import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderEdgeStatement, renderMergeStatement, sha256Hex, type EdgeStatement, type MergeStatement } from '../operator/trust/statements.js';

const oid = (c: string) => c.repeat(40);
const edge: EdgeStatement = { planId: oid('a'), round: 3, edge: 'hospital-a', base: oid('b'), weightsSha256: sha256Hex('w'), datasetSize: 120, architecture: 'aspects-cnn/v1' };
const merge: MergeStatement = {
  planId: oid('a'),
  round: 4,
  parent: oid('c'),
  weightsSha256: sha256Hex('m'),
  strategy: 'fedavg',
  merged: [
    { edge: 'hospital-b', commit: oid('e'), datasetSize: 80, weight: 0.4 },
    { edge: 'hospital-a', commit: oid('d'), datasetSize: 120, weight: 0.6 },
  ],
};

test('sha256Hex of bytes and of text', () => {
  assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Hex(Buffer.from('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('the edge statement is versioned, line-based and exact', () => {
  assert.equal(
    renderEdgeStatement(edge),
    [
      'fedgit-edge-update v1',
      `plan ${oid('a')}`,
      'round 3',
      'edge hospital-a',
      'architecture aspects-cnn/v1',
      `base ${oid('b')}`,
      `weights-sha256 ${sha256Hex('w')}`,
      'dataset-size 120',
      '',
    ].join('\n'),
  );
});

test('the merge statement keeps the given order and spells weights as the trailer does', () => {
  assert.equal(
    renderMergeStatement(merge),
    [
      'fedgit-merge v1',
      `plan ${oid('a')}`,
      'round 4',
      `parent ${oid('c')}`,
      `weights-sha256 ${sha256Hex('m')}`,
      'strategy fedavg',
      'merged 2',
      `update hospital-b ${oid('e')} size=80 weight=0.4`,
      `update hospital-a ${oid('d')} size=120 weight=0.6`,
      '',
    ].join('\n'),
  );
  assert.match(renderMergeStatement({ ...merge, round: 0, parent: null, merged: [] }), /\nparent -\n.*\nmerged 0\n$/s);
  assert.match(renderMergeStatement({ ...merge, merged: [{ ...merge.merged[0]!, weight: -0 }] }), /weight=0\n/);
  assert.match(renderMergeStatement({ ...merge, merged: [{ ...merge.merged[0]!, weight: 1 / 3 }] }), /weight=0\.3333333333333333\n/);
});

test('statements are deterministic and do not depend on property order', () => {
  const shuffled = { datasetSize: 120, architecture: 'aspects-cnn/v1', weightsSha256: sha256Hex('w'), base: oid('b'), edge: 'hospital-a', round: 3, planId: oid('a') };
  assert.equal(renderEdgeStatement(shuffled), renderEdgeStatement(edge));
});

test('no field can smuggle a newline or another line into an edge statement', () => {
  const injections: Array<[Partial<Record<keyof EdgeStatement, unknown>>, string]> = [
    [{ edge: 'hospital-a\nround 9' }, 'edge'],
    [{ edge: 'hospital-a\r' }, 'edge'],
    [{ edge: 'Hospital A' }, 'edge'],
    [{ edge: '' }, 'edge'],
    [{ architecture: 'aspects-cnn/v1\ndataset-size 1' }, 'architecture'],
    [{ architecture: 'aspects\u2028cnn' }, 'architecture'],
    [{ architecture: ' aspects' }, 'architecture'],
    [{ architecture: '' }, 'architecture'],
    [{ planId: `${oid('a')}\nround 9` }, 'planId'],
    [{ planId: oid('A') }, 'planId'],
    [{ planId: 'main' }, 'planId'],
    [{ base: oid('b').slice(1) }, 'base'],
    [{ weightsSha256: `${sha256Hex('w')}\n` }, 'weightsSha256'],
    [{ round: 1.5 }, 'round'],
    [{ round: -1 }, 'round'],
    [{ round: '3' }, 'round'],
    [{ datasetSize: Number.NaN }, 'datasetSize'],
    [{ datasetSize: 2 ** 53 }, 'datasetSize'],
  ];
  for (const [change, field] of injections) {
    assert.throws(() => renderEdgeStatement({ ...edge, ...change } as EdgeStatement), (e: { code?: string; data?: { field?: string }; message: string }) => {
      assert.equal(e.code, 'STATEMENT_INVALID');
      assert.equal(e.data?.field, field);
      assert.ok(!e.message.includes('\n'), 'the error message is one line');
      return true;
    }, JSON.stringify(change));
  }
});

test('no field can smuggle a newline or another update into a merge statement', () => {
  const [a] = merge.merged as [MergeStatement['merged'][0]];
  const injections: Array<[Partial<Record<keyof MergeStatement, unknown>>, string]> = [
    [{ strategy: 'fedavg\nupdate x' }, 'strategy'],
    [{ strategy: '' }, 'strategy'],
    [{ parent: 'none' }, 'parent'],
    [{ parent: undefined }, 'parent'],
    [{ merged: [{ ...a, edge: `hospital-a ${oid('f')} size=1 weight=1\nupdate hospital-z` }] }, 'merged[0].edge'],
    [{ merged: [{ ...a, commit: `${oid('d')} ` }] }, 'merged[0].commit'],
    [{ merged: [{ ...a, weight: Number.POSITIVE_INFINITY }] }, 'merged[0].weight'],
    [{ merged: [{ ...a, weight: '0.5' }] }, 'merged[0].weight'],
    [{ merged: [{ ...a, datasetSize: -1 }] }, 'merged[0].datasetSize'],
    [{ merged: [a, { ...a, commit: oid('f') }] }, 'merged[1].edge'],
    [{ merged: 'hospital-a' }, 'merged'],
  ];
  for (const [change, field] of injections) {
    assert.throws(() => renderMergeStatement({ ...merge, ...change } as MergeStatement), { code: 'STATEMENT_INVALID', data: { field } }, JSON.stringify(change));
  }
});
