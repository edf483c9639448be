/** Secure aggregation's decisions, as tables (no file system), and the agreement-key checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { decideSecureAggregator, type SecureObserved } from '../operator/secagg/secure-decide.js';
import { agreementKeyProblem, decideSecureEdge } from '../operator/secagg/edge-secure.js';
import { generateAgreementKeyPair, parseAgreementKey, parseAgreementPrivateKey } from '../operator/secagg/agreement-keys.js';
import { parsePlan, type CommittedPlan } from '../operator/plan/plan.js';
import type { EdgeRecord, GlobalRecord } from '../operator/store/records.js';
import type { RecoveryRequest, RevealRecord } from '../operator/store/secure-records.js';
import { KeyInvalid } from '../operator/trust/errors.js';
import { generateKeyPair } from '../operator/trust/keys.js';
import { tempDir, runCli } from './helpers/temp.js';

const keys = Object.fromEntries(['a', 'b', 'c'].map((e) => [e, generateAgreementKeyPair()]));
const yaml = `name: t\nrounds: 2\nedges:\n${['a', 'b', 'c'].map((e) => `  - { name: ${e}, agreementKey: '${keys[e]!.publicKey}' }`).join('\n')}\nminEdges: 2\nroundDeadline: 60s\nsecureAggregation: {}\napp: { id: x }\n`;
const plan: CommittedPlan = { id: 'p'.repeat(40), text: yaml, plan: parsePlan(yaml, 'plan.yaml') };
const head: GlobalRecord = { oid: '0'.repeat(40), parent: undefined, planId: plan.id, round: 0, architecture: 'x', strategy: 'fedavg', merged: [], rejected: [], source: undefined, signature: undefined, timeMs: 1_000_000 };
const update = (edge: string): EdgeRecord => ({ oid: edge.repeat(40), edge, planId: plan.id, round: 1, architecture: 'x', base: head.oid, datasetSize: 10, metricsGlobal: {}, metricsLocal: {}, signature: undefined, timeMs: 0, startedMs: 0 });
const request: RecoveryRequest = { oid: 'e'.repeat(40), round: 1, base: head.oid, dropped: ['c'], survivors: [{ edge: 'a', commit: 'a'.repeat(40) }, { edge: 'b', commit: 'b'.repeat(40) }], signature: undefined };
const reveal = (edge: string): RevealRecord => ({ oid: `${edge}1`.repeat(20), edge, round: 1, request: request.oid, seeds: [{ dropped: 'c', seedHex: '0'.repeat(64) }], signature: undefined });

test('secure aggregator decisions', () => {
  const observed = (edges: string[]) => ({ plan, head, finalTag: null, candidates: new Map(['a', 'b', 'c'].map((e) => [e, edges.includes(e) ? update(e) : null])), rejected: [], recorded: [] });
  const noRecovery: SecureObserved = { request: null, reveals: new Map(), survivorRecords: [] };
  const requested = (revealed: string[]): SecureObserved => ({ request, reveals: new Map(revealed.map((e) => [e, reveal(e)])), survivorRecords: [update('a'), update('b')] });
  const cases: Array<[string, ReturnType<typeof observed>, SecureObserved, number, string, Record<string, unknown>?]> = [
    ['every edge in: a plain merge, the masks cancel', observed(['a', 'b', 'c']), noRecovery, head.timeMs, 'merge', { why: 'all-edges', missing: [] }],
    ['two in before the deadline: wait', observed(['a', 'b']), noRecovery, head.timeMs + 59_000, 'wait'],
    ['two in after the deadline: a recovery request naming the dropped edge', observed(['a', 'b']), noRecovery, head.timeMs + 60_000, 'request-recovery', { dropped: ['c'] }],
    ['one in after the deadline (minEdges 2): wait, no request', observed(['a']), noRecovery, head.timeMs + 60_000, 'wait'],
    ['request out, one reveal in: wait for the other', observed(['a', 'b']), requested(['a']), head.timeMs + 61_000, 'wait'],
    ['request out, every reveal in: merge exactly the survivors', observed(['a', 'b']), requested(['a', 'b']), head.timeMs + 61_000, 'merge', { why: 'deadline', missing: ['c'] }],
    ['the dropped edge arrives late: still only the survivors', observed(['a', 'b', 'c']), requested(['a', 'b']), head.timeMs + 61_000, 'merge', { missing: ['c'] }],
    ['the dropped edge arrives late before the reveals: wait, never merge it', observed(['a', 'b', 'c']), requested([]), head.timeMs + 61_000, 'wait'],
  ];
  for (const [what, o, secure, now, kind, fields] of cases) {
    const action = decideSecureAggregator(o, secure, now);
    assert.equal(action.kind, kind, what);
    for (const [k, v] of Object.entries(fields ?? {})) assert.deepEqual((action as Record<string, unknown>)[k], v, `${what}: ${k}`);
    if (action.kind === 'merge') assert.ok(!action.updates.some((u) => secure.request?.dropped.includes(u.edge)), `${what}: a dropped edge is never merged`);
  }
});

test('secure edge decisions: reveal once, only as a survivor, never when dropped', () => {
  const own = [update('a')];
  const cases: Array<[string, Parameters<typeof decideSecureEdge>[0], string | null]> = [
    ['no request', { edge: 'a', request: null, revealedThisRound: false, own }, null],
    ['a survivor that pushed the named update reveals', { edge: 'a', request, revealedThisRound: false, own }, 'reveal'],
    ['a survivor that already revealed this round reveals nothing more', { edge: 'a', request, revealedThisRound: true, own }, null],
    ['the dropped edge sits the round out', { edge: 'c', request, revealedThisRound: false, own: [] }, 'sit-out'],
    ['a survivor named with a commit it cannot prove is its own reveals nothing', { edge: 'a', request, revealedThisRound: false, own: [] }, 'sit-out'],
    ['an edge both dropped and surviving: nothing', { edge: 'a', request: { ...request, dropped: ['b', 'c'] }, revealedThisRound: false, own }, 'sit-out'],
  ];
  for (const [what, o, kind] of cases) assert.equal(decideSecureEdge(o)?.kind ?? null, kind, what);
});

test('agreement keys: absent, mismatched and malformed keys give one clear line, never the private key', () => {
  const a = parseAgreementPrivateKey(keys.a!.privateKeyPem);
  assert.equal(agreementKeyProblem(plan, 'a', a), null);
  assert.match(agreementKeyProblem(plan, 'a', undefined)!, /aggregates securely but this edge has no agreement key \(participant config 'agreementKey'/);
  const other = agreementKeyProblem(plan, 'a', parseAgreementPrivateKey(keys.b!.privateKeyPem))!;
  assert.match(other, /this edge's agreement key \(x25519:.{12}…\) is not the one plan t lists for a \(x25519:.{12}…\); not training/);
  assert.ok(!other.includes(keys.a!.privateKeyPem.split('\n')[1]!));
  assert.throws(() => parseAgreementKey('ed25519:AAAA'), (e: unknown) => e instanceof KeyInvalid && /does not start with 'x25519:'/.test(e.message));
  assert.throws(() => parseAgreementPrivateKey(generateKeyPair().privateKeyPem, 'keys/a.pem'), (e: unknown) => e instanceof KeyInvalid && /keys\/a\.pem is a ed25519 key; secure aggregation needs an X25519 key/.test(e.message));
});

test('fedgit keygen --agreement-out writes both keys 0600 and prints both public keys for the plan', async (t) => {
  const dir = await tempDir(t);
  const out = await runCli(['keygen', '--out', path.join(dir, 'k', 'a.pem'), '--agreement-out', path.join(dir, 'k', 'a-x.pem'), '--name', 'a'], { cwd: dir });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /- name: a\n {2}publicKey: ed25519:\S+\n {2}agreementKey: x25519:\S+/);
  assert.equal((await stat(path.join(dir, 'k', 'a-x.pem'))).mode & 0o777, 0o600);
  const pem = await readFile(path.join(dir, 'k', 'a-x.pem'), 'utf8');
  assert.equal(parseAgreementPrivateKey(pem).asymmetricKeyType, 'x25519');
  assert.ok(!out.stdout.includes(pem.split('\n')[1]!), 'the private key is not printed');
});
