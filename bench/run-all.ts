/**
 * `npm run bench`: prints figures and ratios against references measured in
 * the same run. Nothing is asserted: machines here are shared and noisy.
 * `npm run bench -- store lfs` runs only the named parts (the keys of PARTS below).
 */
import os from 'node:os';
import { benchOrchestration } from './orchestration.js';
import { benchGitStore } from './git-store.js';
import { benchDataLoader } from './data-loader.js';
import { benchAspectsModel } from './aspects-model.js';
import { benchTorchVsTfjs } from './torch-vs-tfjs.js';
import { benchRemote } from './remote.js';
import { benchRemoteFloor } from './remote-floor.js';
import { benchSimulation } from './simulation.js';
import { benchLfs } from './lfs.js';
import { benchLfsRound } from './lfs-round.js';
import { benchSecureAggregation } from './secure-aggregation.js';
import { benchMergeMemory } from './merge-memory.js';

const PARTS: Record<string, () => Promise<void>> = {
  orchestration: () => benchOrchestration(),
  simulation: () => benchSimulation(),
  remote: () => benchRemote(),
  'remote-webhooks': () => benchRemote({ withPolling: false }),
  'remote-floor': () => benchRemoteFloor(),
  lfs: () => benchLfs(),
  'lfs-round': () => benchLfsRound(),
  store: () => benchGitStore(),
  merge: () => benchMergeMemory(),
  data: () => benchDataLoader(),
  model: () => benchAspectsModel(),
  torch: () => benchTorchVsTfjs(),
  secagg: () => benchSecureAggregation(),
};

const wanted = process.argv.slice(2);
// docs/measurements.md states when and where its figures were measured: say it with every run.
console.log(`fedgit bench ${new Date().toISOString()} on ${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ` +
  `${(os.totalmem() / 2 ** 30).toFixed(0)} GB, Node.js ${process.version}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
for (const name of wanted.length ? wanted : Object.keys(PARTS)) {
  const part = PARTS[name];
  if (!part) {
    console.error(`unknown benchmark '${name}' (known: ${Object.keys(PARTS).join(', ')})`);
    process.exit(2);
  }
  console.log(`\n== ${name} ==`);
  const started = performance.now();
  await part();
  console.log(`(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
