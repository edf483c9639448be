/**
 * An error whose class is fatal (operator/errors.ts) stops a running edge instead of being
 * retried: the CLI exits with the class's status and says why in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXIT } from '../operator/errors.js';
import { runCli, tempDir } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { inProcessAggregator } from './helpers/chaos.js';
import { builtinRegistries } from '../bin/registries.js';

test('exit 3 from a running edge: an app error whose class is fatal (ConfigInvalid: no data folder) stops it', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const { repos } = await setUpFederation(dir, 'name: asp\nrounds: 1\nedges: [hospital-a]\nseed: 1\napp:\n  id: aspects-cnn\n  options: {}\n');
  await inProcessAggregator(repos, {}, builtinRegistries).reconcile(); // round 0: the edge has work at once
  const r = await runCli(['edge', '--name', 'hospital-a', '--repos', repos], { cwd: dir, timeoutMs: 100_000 });
  assert.equal(r.code, EXIT.invalid, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /^fedgit: edge hospital-a: app aspects-cnn needs a data folder/m);
});
