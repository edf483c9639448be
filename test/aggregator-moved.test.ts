/**
 * A reconcile told which repositories moved reads only their branches again: with many edges, a
 * push costs the aggregator one ref read, not one per edge. Told nothing, it reads every edge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { Repository } from '../operator/git/repository.js';
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { commitEdgeUpdate, readGlobalHead, readWeights, reposUnder } from '../operator/store/federation.js';
import { builtinRegistries } from '../bin/registries.js';
import { createLogger } from '../operator/runtime/logging.js';
import { createOpener } from '../operator/store/open-repository.js';

test('an edge whose repository is not named as moved is not read again; a reconcile told nothing reads them all', async (t) => {
  const dir = await tempDir(t);
  const { plan, repos } = await setUpFederation(dir, toyPlan({ rounds: 3, minEdges: 2 }));
  const aggregator = new AggregatorOperator({ locate: (e) => reposUnder(repos, e), open: createOpener(), ...builtinRegistries, log: createLogger({ participant: 'aggregator', console: false }) });
  const global = await aggregator.global();
  const where = reposUnder(repos, ['hospital-a', 'hospital-b']);
  const a = where.edges['hospital-a']!;
  const b = where.edges['hospital-b']!;
  const round = async () => (await readGlobalHead(global, plan))!;
  const push = async (edge: string) => {
    const head = await round();
    return commitEdgeUpdate(new Repository(where.edges[edge]!), { plan, edge, round: head.round + 1, base: head.oid, architecture: 'linear-toy/v1', tensors: await readWeights(global, head.oid), datasetSize: 10, metrics: { global: {}, local: {} } });
  };

  await aggregator.reconcile();
  await aggregator.reconcile(); // reads both edges' branches: none yet
  assert.equal((await round()).round, 0);

  await push('hospital-a');
  await push('hospital-b');
  await aggregator.reconcile(new Set([a]));
  assert.equal((await round()).round, 0, 'hospital-b was not named, so its push is not seen yet');
  await aggregator.reconcile(new Set([b]));
  assert.equal((await round()).round, 1, 'named now, it is read, and hospital-a is remembered from the reconcile before');

  await push('hospital-a');
  await push('hospital-b');
  await aggregator.reconcile(new Set());
  assert.equal((await round()).round, 1, 'nothing named, nothing read');
  await aggregator.reconcile();
  assert.equal((await round()).round, 2, 'told nothing, it reads every edge');
});
