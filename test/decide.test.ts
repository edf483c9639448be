/** decide: tables of situations → actions, no file system. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAggregator, namesOf } from '../operator/reconcile/aggregator-decide.js';
import { decideEdge, MAX_REFUSED_ATTEMPTS } from '../operator/reconcile/edge-decide.js';
import type { RejectedEntry } from '../operator/git/names.js';
import { parsePlan, type CommittedPlan } from '../operator/plan/plan.js';
import type { EdgeRecord, GlobalRecord } from '../operator/store/records.js';

const plan: CommittedPlan = {
  id: 'p'.repeat(40),
  text: '',
  plan: parsePlan('name: t\nrounds: 2\nedges: [a, b, c]\nminEdges: 2\nroundDeadline: 60s\napp: { id: x }\n', 'plan.yaml'),
};
const head = (round: number, oid = `${round}`.repeat(40).slice(0, 40), timeMs = 1_000_000): GlobalRecord => ({
  oid, parent: undefined, planId: plan.id, round, architecture: 'x', strategy: 'fedavg', merged: [], rejected: [], source: undefined, signature: undefined, timeMs,
});
const update = (edge: string, base: string, round: number): EdgeRecord => ({
  oid: `${edge}`.repeat(40).slice(0, 40), edge, planId: plan.id, round, architecture: 'x', base, datasetSize: 10, metricsGlobal: {}, metricsLocal: {}, signature: undefined, timeMs: 0, startedMs: 0,
});

const refusal = (edge: string, reason = 'tensor w holds a non-finite value at index 0'): RejectedEntry => ({ edge, commit: `${edge}f`.repeat(40).slice(0, 40), reason });

test('aggregator decisions', () => {
  const h = head(0);
  const none: Parameters<typeof decideAggregator>[0] = { plan, head: null, finalTag: null, candidates: new Map(), rejected: [], recorded: [] };
  const all = new Map([['a', update('a', h.oid, 1)], ['b', update('b', h.oid, 1)], ['c', update('c', h.oid, 1)]]);
  const two = new Map([['a', update('a', h.oid, 1)], ['b', update('b', h.oid, 1)], ['c', null]]);
  const stale = new Map([['a', update('a', 'f'.repeat(40), 1)], ['b', update('b', h.oid, 1)], ['c', update('c', h.oid, 2)]]);
  const cases: Array<[string, Parameters<typeof decideAggregator>[0], number, string, Record<string, unknown>?]> = [
    ['no plan', { ...none, plan: null, head: null }, 0, 'wait'],
    ['no round 0', { ...none, head: null }, 0, 'init'],
    ['all edges in', { ...none, head: h, candidates: all }, h.timeMs, 'merge', { why: 'all-edges', rejected: [] }],
    ['two in, before the deadline', { ...none, head: h, candidates: two }, h.timeMs + 59_000, 'wait', { untilMs: h.timeMs + 60_000 }],
    ['two in, after the deadline', { ...none, head: h, candidates: two }, h.timeMs + 60_000, 'merge', { why: 'deadline', missing: ['c'] }],
    ['stale base and wrong round are not counted', { ...none, head: h, candidates: stale }, h.timeMs + 61_000, 'wait'],
    ['a refused update not yet recorded is recorded first, even with every edge in', { ...none, head: h, candidates: all, rejected: [refusal('c')] }, h.timeMs, 'record-rejections', { entries: [refusal('c')] }],
    ['a recorded refusal is not recorded again', { ...none, head: h, candidates: two, rejected: [refusal('c')], recorded: [refusal('c')] }, h.timeMs, 'wait', { untilMs: h.timeMs + 60_000 }],
    ['an edge with only a refused update counts as missing: the deadline merges the others and names the refusal', { ...none, head: h, candidates: two, rejected: [refusal('c')], recorded: [refusal('c')] }, h.timeMs + 60_000, 'merge', { why: 'deadline', missing: ['c'], rejected: [refusal('c')] }],
    ['a refusal does not stop a round whose edges all have a valid update', { ...none, head: h, candidates: all, recorded: [refusal('c')] }, h.timeMs, 'merge', { why: 'all-edges', rejected: [refusal('c')] }],
    ['last round, untagged', { ...none, head: head(2) }, 0, 'tag'],
    ['last round, tagged', { ...none, head: head(2), finalTag: head(2).oid }, 0, 'done'],
  ];
  for (const [name, observed, now, kind, extra] of cases) {
    const action = decideAggregator(observed, now);
    assert.equal(action.kind, kind, name);
    for (const [k, v] of Object.entries(extra ?? {})) assert.deepEqual((action as Record<string, unknown>)[k], v, `${name}: ${k}`);
  }
  const merge = decideAggregator({ ...none, head: h, candidates: stale }, h.timeMs + 61_000);
  assert.equal(merge.kind, 'wait', 'only b is valid, 2 are needed');
});

test('a wait names up to 8 missing edges, then the first 6 and how many more', () => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `e${String(i + 1).padStart(3, '0')}`);
  assert.equal(namesOf(names(8)), 'e001, e002, e003, e004, e005, e006, e007, e008');
  assert.equal(namesOf(names(100)), '100 edges (e001, e002, e003, e004, e005, e006 and 94 more)');
  const many: CommittedPlan = { ...plan, plan: parsePlan(`name: t\nrounds: 2\nedges: [${names(100).join(', ')}]\nroundDeadline: 60s\napp: { id: x }\n`, 'plan.yaml') };
  const h = head(0);
  const action = decideAggregator({ plan: many, head: h, finalTag: null, candidates: new Map([['e001', update('e001', h.oid, 1)]]), rejected: [], recorded: [] }, h.timeMs + 1);
  assert.equal(action.kind, 'wait');
  assert.equal((action as { reason: string }).reason, 'round 1: 1/100 valid updates, waiting for 99 edges (e002, e003, e004, e005, e006, e007 and 93 more)');
});

test('edge decisions', () => {
  const h = head(1);
  const base = { edge: 'a', plan, globalHead: h, finalTag: null, own: [] as EdgeRecord[], refused: [] as RejectedEntry[], training: null };
  const mine = update('a', h.oid, 2);
  const refusedMine = (r: EdgeRecord): RejectedEntry => ({ edge: 'a', commit: r.oid, reason: 'unreadable' });
  const attempts = [0, 1, 2].map((i) => ({ ...mine, oid: `${i}`.repeat(40) }));
  const cases: Array<[string, Parameters<typeof decideEdge>[0], string]> = [
    ['no plan', { ...base, plan: null }, 'wait'],
    ['not in plan', { ...base, edge: 'zz' }, 'wait'],
    ['no round 0', { ...base, globalHead: null }, 'wait'],
    ['new head', base, 'train'],
    ['already pushed for this head', { ...base, own: [mine] }, 'wait'],
    ['its update on this head was refused: train again', { ...base, own: [mine], refused: [refusedMine(mine)] }, 'train'],
    ['refused, then pushed again and not refused: wait', { ...base, own: [attempts[1]!, attempts[0]!], refused: [refusedMine(attempts[0]!)] }, 'wait'],
    [`refused ${MAX_REFUSED_ATTEMPTS} times on this head: stop trying`, { ...base, own: attempts, refused: attempts.map(refusedMine) }, 'wait'],
    ['pushed for an older head', { ...base, own: [update('a', 'e'.repeat(40), 1)] }, 'train'],
    ['training on this head', { ...base, training: { planId: plan.id, base: h.oid } }, 'keep-training'],
    ['head moved while training', { ...base, training: { planId: plan.id, base: 'e'.repeat(40) } }, 'abort'],
    ['plan changed while training', { ...base, training: { planId: 'q'.repeat(40), base: h.oid } }, 'abort'],
    ['final round reached', { ...base, globalHead: head(2) }, 'done'],
  ];
  for (const [name, observed, kind] of cases) assert.equal(decideEdge(observed).kind, kind, name);
  const train = decideEdge(base);
  assert.ok(train.kind === 'train' && train.round === 2 && train.base.oid === h.oid);
});
