/**
 * In a plan that requires signed updates, an edge counts as its own only the commits on its branch
 * whose signature verifies. With `lfs: true` it checks that signature from the weights' LFS
 * pointer (its oid is the SHA-256 the statement covers), so `fedgit prune` removing old rounds'
 * objects changes nothing for it: restarted, it warns about none of its commits and waits for the
 * merge of the round it pushed. Commits it did not push stay refused, with the reason in the
 * warning: another key's signature, its own signature over other weights (with and without LFS),
 * and pointers it never wrote — malformed, or announcing more bytes than the plan allows.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { EdgeOperator } from '../operator/reconcile/edge-operator.js';
import { pruneLfsObjects } from '../operator/commands/prune.js';
import { Repository } from '../operator/git/repository.js';
import { WEIGHTS_FILE, planBranch, shortId } from '../operator/git/names.js';
import { renderPointer } from '../operator/lfs/pointer.js';
import { commitEdgeUpdate, readEdgeHistory, readWeights, reposUnder } from '../operator/store/federation.js';
import { createOpener } from '../operator/store/open-repository.js';
import { LfsObjectMissing } from '../operator/errors.js';
import { generateKeyPair, parsePrivateKey } from '../operator/trust/keys.js';
import { sign } from '../operator/trust/sign.js';
import { sha256Hex } from '../operator/trust/statements.js';
import { startToyFederation, type ToyFederation } from './helpers/toy-federation.js';
import { whereUnder } from './helpers/chaos.js';
import { tempDir, toyPlan } from './helpers/temp.js';

const EDGES = ['hospital-a', 'hospital-b'];
const EDGE = 'hospital-a';

/** A toy federation whose plan lists both edges' public keys; their updates are signed. */
async function signedFederation(t: TestContext, o: { rounds: number; lfs: boolean }) {
  const pairs = Object.fromEntries(EDGES.map((edge) => [edge, generateKeyPair()]));
  const listed = EDGES.map((edge) => `  - { name: ${edge}, publicKey: '${pairs[edge]!.publicKey}' }`).join('\n');
  const planYaml = `${toyPlan({ rounds: o.rounds, edges: EDGES, minEdges: 2 }).replace(`edges: [${EDGES.join(', ')}]`, `edges:\n${listed}`)}${o.lfs ? 'lfs: true\n' : ''}`;
  const keys = Object.fromEntries(EDGES.map((edge) => [edge, parsePrivateKey(pairs[edge]!.privateKeyPem)]));
  const fed = await startToyFederation(await tempDir(t), { rounds: o.rounds, edges: EDGES, planYaml, keys });
  t.after(() => fed.close());
  return { fed, key: keys[EDGE]! };
}

/** hospital-a's operator as a restart makes it: nothing judged yet; its warnings and notes kept. */
function restartedEdge(t: TestContext, fed: ToyFederation, key: KeyObject) {
  const warnings: string[] = [];
  const notes: string[] = [];
  const log = { error: () => undefined, warn: (message: string) => void warnings.push(message), info: (message: string) => void notes.push(message), debug: () => undefined };
  const edge = new EdgeOperator({
    edge: EDGE, locate: (edges) => reposUnder(fed.repos, edges), open: createOpener(), apps: fed.registries.apps, strategies: fed.registries.strategies,
    engine: { kind: 'builtin' }, dataDir: undefined, log, key, trigger: () => undefined,
  });
  t.after(() => edge.stop());
  return { edge, warnings, notes };
}

const notPushed = (warnings: readonly string[]) => warnings.filter((w) => w.includes('was not pushed by'));

test('a signed LFS plan pruned to 2 rounds: the restarted edge still proves every commit of its own, warns about none, and waits for the merge', async (t) => {
  const { fed, key } = await signedFederation(t, { rounds: 5, lfs: true });
  for (let r = 1; r <= 4; r++) assert.equal((await fed.round()).round, r);
  await fed.push(EDGE); // round 5, not merged yet: hospital-b has not pushed
  const own = new Repository(fed.where.edges[EDGE]!);
  const history = await readEdgeHistory(own, fed.plan);
  assert.deepEqual(history.map((r) => r.round), [5, 4, 3, 2, 1]);

  await pruneLfsObjects(whereUnder(fed.repos), fed.plan, { keepRounds: 2, dryRun: false });
  for (const pruned of history.filter((r) => r.round <= 2)) {
    await assert.rejects(own.readFile(pruned.oid, WEIGHTS_FILE), LfsObjectMissing, `round ${pruned.round}'s update was pruned`);
  }

  const { edge, warnings, notes } = restartedEdge(t, fed, key);
  await edge.open();
  const observed = await edge.observe();
  assert.deepEqual(observed.own.map((r) => r.oid), history.map((r) => r.oid), 'every commit on its branch is its own, pruned or not');
  assert.deepEqual(notPushed(warnings), []);
  assert.equal(await edge.reconcile(), undefined);
  assert.ok(notes.includes('round 5 pushed, waiting for the merge'), notes.join('\n'));
  assert.ok(!notes.some((n) => /training/.test(n)), 'it does not train round 5 again');

  await fed.push('hospital-b');
  await fed.settle();
  assert.equal((await fed.head()).round, 5);
  assert.deepEqual(await edge.reconcile(), { done: true });
  assert.deepEqual(warnings, []);
});

/** Writes a commit with the given weights blob and message on the edge's branch, as someone with write access could. */
async function placeOnBranch(fed: ToyFederation, files: { weights: Uint8Array; message: string; lfs: boolean }): Promise<string> {
  const repo = new Repository(fed.where.edges[EDGE]!);
  const branch = planBranch(fed.plan.plan.name, fed.plan.id);
  const parent = await repo.readRef(branch);
  const oid = await repo.writeCommit({
    files: { [WEIGHTS_FILE]: files.weights }, parents: parent ? [parent] : [], message: files.message,
    author: { name: EDGE, email: `${EDGE}@example.org`, timestamp: 1_700_000_000 }, ...(files.lfs ? { lfs: { minBytes: 0 } } : {}),
  });
  await repo.updateRef(branch, oid, parent);
  return oid;
}

for (const lfs of [true, false]) {
  test(`${lfs ? 'an LFS' : 'a plain-blob'} signed plan: commits on the edge's branch whose weights its signature does not cover are not its own, each with its reason`, async (t) => {
    const { fed, key } = await signedFederation(t, { rounds: 3, lfs });
    assert.equal((await fed.round()).round, 1);
    const own = new Repository(fed.where.edges[EDGE]!);
    const [genuine] = await readEdgeHistory(own, fed.plan);
    const signedMessage = (await own.readCommit(genuine!.oid)).message;
    const head = await fed.head();
    const signedWeights = await own.readFile(genuine!.oid, WEIGHTS_FILE);
    const otherWeights = Buffer.from(signedWeights);
    otherWeights[otherWeights.length - 1]! ^= 1;

    const intruder = parsePrivateKey(generateKeyPair().privateKeyPem);
    const tensors = await readWeights(fed.global, head.oid);
    const forged = await commitEdgeUpdate(own, {
      plan: fed.plan, edge: EDGE, round: 2, base: head.oid, architecture: 'linear-toy/v1', tensors, datasetSize: 100,
      metrics: { global: {}, local: {} }, sign: (statement) => sign(statement, intruder),
    });
    const replayed = await placeOnBranch(fed, { weights: otherWeights, message: signedMessage, lfs });
    const refusals: Array<{ what: string; commit: string; reason: RegExp }> = [
      { what: 'signed with another key', commit: forged, reason: /\(signature: signature does not match the statement and key\)/ },
      { what: 'its signature over other weights', commit: replayed, reason: /\(signature: signature does not match the statement and key\)/ },
    ];
    // Pointers the edge never wrote, under its genuine signature: refused with the reason, never a crash.
    const signedOid = sha256Hex(signedWeights);
    const pointers: Array<[string, string, RegExp]> = [
      ['malformed oid', `version https://git-lfs.github.com/spec/v1\noid sha256:${signedOid.slice(1)}\nsize 100\n`, /its signature cannot be checked: .*not a valid Git LFS pointer: oid "sha256:[0-9a-f]{63}" is not sha256:<64 hex digits>/],
      ['malformed size', `version https://git-lfs.github.com/spec/v1\noid sha256:${signedOid}\nsize 1e3\n`, /its signature cannot be checked: .*not a valid Git LFS pointer: size "1e3" is not a byte count/],
      ['oversize', renderPointer({ oid: signedOid, size: 1e12 }).toString('utf8'), /its signature cannot be checked: .*its LFS pointer announces 1000000000000 bytes, more than the \d+ allowed here/],
      // With LFS, the object the edge stored is there to contradict the size; without, the plain blob's hash names no object.
      ['a size its object contradicts', renderPointer({ oid: signedOid, size: signedWeights.length + 1 }).toString('utf8'), lfs
        ? new RegExp(`its LFS pointer says ${signedWeights.length + 1} bytes, the object in this repository's store has ${signedWeights.length}\\)`)
        : new RegExp(`its signature cannot be checked: .*LFS object ${signedOid} is not in this repository's store`)],
    ];
    for (const [what, pointer, reason] of pointers) {
      refusals.push({ what, commit: await placeOnBranch(fed, { weights: Buffer.from(pointer, 'utf8'), message: signedMessage, lfs: false }), reason });
    }

    const { edge, warnings } = restartedEdge(t, fed, key);
    await edge.open();
    const observed = await edge.observe();
    assert.deepEqual(observed.own.map((r) => r.oid), [genuine!.oid], 'only the commit it pushed is its own');
    const warned = notPushed(warnings);
    assert.equal(warned.length, refusals.length, warned.join('\n'));
    for (const { what, commit, reason } of refusals) {
      const line = warned.find((w) => w.startsWith(`commit ${shortId(commit)} on this edge's branch was not pushed by ${EDGE} (`));
      assert.ok(line, `${what}: a warning for ${commit}:\n${warned.join('\n')}`);
      assert.match(line, reason, what);
    }
  });
}
