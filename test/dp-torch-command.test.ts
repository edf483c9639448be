/**
 * DP-FedAvg with PyTorch edges: two hospitals each run edge-app/python/aspects_torch.py through the
 * external-command adapter (made-up features, as in torch-command.test.ts: registering scans is
 * tested elsewhere), the real aggregator merges with clipping and noise, and every merge audits —
 * bit for bit with the round's seed, and by the noise statistics without it. Needs python3 with
 * torch and numpy ($FEDGIT_PYTHON picks the interpreter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epsilonAfter } from '../operator/privacy/rdp-accountant.js';
import { readFinalTag } from '../operator/store/federation.js';
import { requireTorch } from './helpers/python.js';
import { failures, startDpFederation } from './helpers/dp-federation.js';
import { torchRegionApp } from './helpers/torch-region-app.js';

const PLAN = `name: dp-torch
rounds: 2
edges: [hospital-a, hospital-b]
seed: 3
app: { id: aspects-cnn, options: { batchSize: 4, learningRate: 0.003 } }
privacy: { targetEpsilon: 8, delta: 0.00001, noiseMultiplier: 2, clipNorm: 0.05 }
`;

test('DP-FedAvg over two PyTorch edges (external command): 2 rounds, every merge audits with and without the seed', async (t) => {
  requireTorch('the DP test with PyTorch edges');
  const fed = await startDpFederation(t, PLAN, {
    createApp: (edge, { log, dir }) => torchRegionApp({ edge, dir, seed: edge === 'hospital-a' ? 4 : 5, log }),
  });
  for (let r = 1; r <= 2; r++) {
    const merge = await fed.round();
    assert.equal(merge.round, r, fed.lines.join('\n'));
    assert.deepEqual(merge.merged.map((m) => [m.edge, m.weight]), [['hospital-a', 0.5], ['hospital-b', 0.5]]);
    assert.ok((merge.clipped ?? []).length > 0, 'clipNorm 0.05 is below the PyTorch updates\' norms, so the clipping path runs too');
    assert.ok(Number(merge.privacy!.epsilon) >= epsilonAfter(r, 1e-5, 2), `ε ${merge.privacy!.epsilon} after round ${r}`);
    const withSeed = await fed.audit(merge.oid, await fed.seedOf(r));
    assert.ok(withSeed.ok, `round ${r} with the seed: ${failures(withSeed)}`);
    assert.ok(withSeed.checks.some((c) => c.ok && /recomputed DP-FedAvg .* matches the stored weights bit for bit/.test(c.what)));
    const seedless = await fed.audit(merge.oid);
    assert.ok(seedless.ok, `round ${r} without the seed: ${failures(seedless)}`);
    assert.ok(seedless.checks.some((c) => c.ok && /look like N\(0, σ²\)/.test(c.what)));
    const wrongSeed = await fed.audit(merge.oid, await fed.seedOf(r + 1));
    assert.ok(!wrongSeed.ok, 'another round\'s seed does not audit');
  }
  assert.equal(await readFinalTag(fed.global, fed.plan), (await fed.head()).oid, 'the plan finished and is tagged');
});
