/**
 * Secure aggregation with PyTorch edges: two hospitals run edge-app/python/aspects_torch.py
 * through the external-command adapter; fedgit masks what the command returns before the commit,
 * so the engine knows nothing of it. Each pushed update is independent of the true one, the merge
 * is FedAvg of the true updates within the fixed-point resolution, and it audits bit for bit.
 * Needs python3 with torch and numpy ($FEDGIT_PYTHON picks the interpreter).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { inProcessAggregator } from './helpers/chaos.js';
import { assertSecureMerge, fixedAgreementKey, maskedCorrelation } from './helpers/secure-federation.js';
import { requireTorch } from './helpers/python.js';
import { torchRegionApp } from './helpers/torch-region-app.js';
import { builtinRegistries } from '../bin/registries.js';
import { commitEdgeUpdate, readGlobalHead, readWeights } from '../operator/store/federation.js';
import { Repository } from '../operator/git/repository.js';
import { parseWordSafetensors } from '../operator/checkpoint/safetensors.js';
import { maskForPush } from '../operator/secagg/edge-secure.js';
import type { Update } from '../operator/contracts.js';

const EDGES = ['hospital-a', 'hospital-b'];
const FRACTIONAL_BITS = 24;

test('secure aggregation over two PyTorch edges (external command): masked pushes, FedAvg within the resolution, audits', { timeout: 300_000 }, async (t) => {
  requireTorch('the secure-aggregation test with PyTorch edges');
  const dir = await tempDir(t);
  const agreement = Object.fromEntries(EDGES.map((e) => [e, fixedAgreementKey(e)]));
  const edges = EDGES.map((e) => `  - { name: ${e}, agreementKey: '${agreement[e]!.publicKey}' }`).join('\n');
  const { plan, repos, where } = await setUpFederation(dir, `name: secure-torch\nrounds: 2\nedges:\n${edges}\nminEdges: 2\nseed: 3\nsecureAggregation: { fractionalBits: ${FRACTIONAL_BITS} }\napp: { id: aspects-cnn, options: { batchSize: 4, learningRate: 0.003 } }\n`);
  const aggregator = inProcessAggregator(repos, {}, builtinRegistries);
  const settle = async () => { for (let i = 0; i < 20 && (await aggregator.reconcile())?.lookAgain; i++); };
  await settle();
  const global = await aggregator.global();
  const quiet = { error() {}, warn() {}, info() {}, debug() {} };
  const apps = new Map(await Promise.all(EDGES.map(async (edge, i) => [edge, await torchRegionApp({ edge, dir, seed: 4 + i, log: quiet })] as const)));
  t.after(() => Promise.all([...apps.values()].map((a) => a.close())).then(() => undefined));
  for (let round = 1; round <= 2; round++) {
    const head = (await readGlobalHead(global, plan))!;
    const previous = await readWeights(global, head.oid);
    const truths: Update[] = [];
    for (const edge of EDGES) {
      const app = apps.get(edge)!;
      const result = await app.train({ weights: previous, epochs: 1, round, planId: plan.id, seed: 3, signal: new AbortController().signal });
      const masked = maskForPush(plan, agreement[edge]!.privateKey, { edge, round, tensors: result.weights, previous, datasetSize: result.datasetSize });
      const repo = new Repository(where.edges[edge]!);
      const oid = await commitEdgeUpdate(repo, { plan, edge, round, base: head.oid, architecture: app.architecture, tensors: result.weights, masked, datasetSize: result.datasetSize, metrics: result.metrics });
      // This model is small: independence shows as |r| within 5 standard errors of 0 (1/√n each; a false alarm about once in 1.7 million).
      const count = [...previous.values()].reduce((n, tensor) => n + tensor.data.length, 0);
      const r = maskedCorrelation(parseWordSafetensors(await repo.readFile(oid, 'weights.safetensors')).tensors, result.weights, previous);
      assert.ok(Math.abs(r) < 5 / Math.sqrt(count), `round ${round}, ${edge}: correlation ${r} of the pushed update with the true one over ${count} values`);
      truths.push({ edge, datasetSize: result.datasetSize, tensors: result.weights });
    }
    await settle();
    const rendered = await assertSecureMerge({ global, plan, repos, round, truths, previous, fractionalBits: FRACTIONAL_BITS });
    assert.match(rendered, /ok {3}recomputed secure fedavg \(sum of 2 masked updates mod 2\^64/);
  }
});
