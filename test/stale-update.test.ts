/** An edge commit whose base is not the current global head is never merged (real repositories). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { Repository } from '../operator/git/repository.js';
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { commitEdgeUpdate, readGlobalHead, readGlobalHistory, readWeights } from '../operator/store/federation.js';
import { builtinRegistries } from '../bin/registries.js';
import { reposUnder } from '../operator/store/federation.js';
import { createLogger } from '../operator/runtime/logging.js';
import { createOpener } from '../operator/store/open-repository.js';

test('stale and foreign-base updates are ignored; the round merges only updates on the head', async (t) => {
  const dir = await tempDir(t);
  const { plan, repos } = await setUpFederation(dir, toyPlan({ rounds: 2, minEdges: 2 }));
  const registries = builtinRegistries;
  const aggregator = new AggregatorOperator({ locate: (e) => reposUnder(repos, e), open: createOpener(), ...registries, log: createLogger({ participant: 'aggregator', console: false }) });
  const global = await aggregator.global();
  await aggregator.reconcile();
  const round0 = (await readGlobalHead(global, plan))!;
  assert.equal(round0.round, 0);
  const weights = await readWeights(global, round0.oid);
  const where = reposUnder(repos, ['hospital-a', 'hospital-b']);
  const push = (edge: string, base: string, round: number) =>
    commitEdgeUpdate(new Repository(where.edges[edge]!), { plan, edge, round, base, architecture: 'linear-toy/v1', tensors: weights, datasetSize: 10, metrics: { global: {}, local: {} } });

  await push('hospital-a', round0.oid, 1);
  await push('hospital-b', 'b'.repeat(40), 1); // trained from a commit that is not the head
  await aggregator.reconcile();
  assert.equal((await readGlobalHead(global, plan))!.round, 0, 'no merge with one valid update of the two needed');

  const good = await push('hospital-b', round0.oid, 1);
  await aggregator.reconcile();
  const round1 = (await readGlobalHead(global, plan))!;
  assert.equal(round1.round, 1);
  assert.deepEqual(round1.merged.map((m) => m.edge), ['hospital-a', 'hospital-b']);
  assert.equal(round1.merged[1]!.commit, good);

  // Updates for round 1 pushed again after the merge are stale now: nothing merges round 2 from them.
  await push('hospital-a', round0.oid, 1);
  await push('hospital-b', round0.oid, 1);
  await aggregator.reconcile();
  assert.equal((await readGlobalHistory(global, plan)).length, 2);
});
