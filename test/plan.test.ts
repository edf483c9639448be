import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlan } from '../operator/plan/plan.js';
import { ParticipantSchema, resolveParticipant } from '../operator/config/participant.js';

test('defaults: one epoch per round, a one-hour deadline, every edge needed, fedavg', () => {
  const plan = parsePlan('name: p\nrounds: 2\nedges: [a, b]\napp: { id: x }\n', 'p.yaml');
  assert.equal(plan.epochsPerRound, 1);
  assert.equal(plan.roundDeadlineMs, 3_600_000);
  assert.equal(plan.minEdges, 2);
  assert.equal(plan.strategy, 'fedavg');
  assert.equal(parsePlan('name: p\nrounds: 2\nedges: [a]\nroundDeadline: 90s\napp: { id: x }\n', 'p.yaml').roundDeadlineMs, 90_000);
  assert.equal(parsePlan('name: p\nrounds: 2\nedges: [a]\nroundDeadline: 2\napp: { id: x }\n', 'p.yaml').roundDeadlineMs, 2_000);
});

test('participant defaults: poll every second', () => {
  const edge = resolveParticipant(ParticipantSchema.parse({ role: 'edge', name: 'a', repos: { root: 'repos' } }), '/tmp/a.yaml');
  assert.equal(edge.pollIntervalMs, 1_000);
  const fast = resolveParticipant(ParticipantSchema.parse({ role: 'aggregator', repos: { root: 'repos' }, pollInterval: '250ms' }), '/tmp/b.yaml');
  assert.equal(fast.pollIntervalMs, 250);
});

test('signed plans need a valid key for every edge', () => {
  const key = 'ed25519:' + Buffer.alloc(32, 7).toString('base64');
  assert.throws(() => parsePlan(`name: p\nrounds: 1\nedges: [{ name: a, publicKey: '${key}' }, b]\napp: { id: x }\n`, 'p.yaml'), /p\.yaml:3: edges\[1\]: edge 'b' has no publicKey/);
  assert.throws(() => parsePlan(`name: p\nrounds: 1\nedges: [{ name: a, publicKey: 'ed25519:abc' }]\napp: { id: x }\n`, 'p.yaml'), /edges\[0\]\.publicKey: must be an Ed25519 public key/);
  assert.equal(parsePlan(`name: p\nrounds: 1\nedges: [{ name: a, publicKey: '${key}' }]\napp: { id: x }\n`, 'p.yaml').edges[0]!.publicKey, key);
});
