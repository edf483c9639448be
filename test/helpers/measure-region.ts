/**
 * The measurements of edge-app/aspects/MODEL.md "Measured" (not a test):
 *
 *   node dist/test/helpers/measure-region.js compare ROOT
 *       ROOT/{hospital-a,hospital-b,test}: v3 central (rounds × epochs, one Adam state) and a
 *       FedAvg simulation (fresh Adam per round, aggregator-app's fedAvg), and v2 central on the
 *       8×16×16 grid, all from the same round-0 seed; test macro AUC.
 *   node dist/test/helpers/measure-region.js cross TRAIN_DIR[,TRAIN_DIR…] TEST_DIR
 *       v3 central trained on the training splits of the first folders, tested on another.
 *   node dist/test/helpers/measure-region.js independent DIR COUNT SEED
 *       writes a cohort of test/helpers/independent-cohort.ts.
 *
 * Settings: ROUNDS (8), EPR (2), LR (3e-3), BATCH (8), HIDDEN (32), SKIP_V2=1.
 */
import path from 'node:path';
import { fedAvg } from '../../aggregator-app/fedavg.js';
import { evaluateSamples, roundSeed, splitSamples } from '../../edge-app/aspects/app.js';
import { AspectsTrainer } from '../../edge-app/aspects/model.js';
import { evaluateRegionSamples } from '../../edge-app/aspects/region-app.js';
import { RegionTrainer } from '../../edge-app/aspects/region-model.js';
import { initialRegionWeights } from '../../edge-app/aspects/region-spec.js';
import { initialAspectsWeights } from '../../edge-app/aspects/spec.js';
import { loadCohort } from '../../edge-app/cohort/index.js';
import { loadRegionCohort, type RegionSample } from '../../edge-app/preprocess/region-cohort.js';
import { selectBackend } from '../../edge-app/tf-backend.js';
import type { Metrics, Tensors } from '../../operator/contracts.js';
import { writeIndependentCohort } from './independent-cohort.js';

const setting = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const rounds = setting('ROUNDS', 8), epr = setting('EPR', 2), lr = setting('LR', 3e-3), batch = setting('BATCH', 8), hidden = setting('HIDDEN', 32);
const SEED = 42;
const refused: string[] = [];
const auc = (m: Metrics): string => (typeof m.macroAuc === 'number' ? m.macroAuc.toFixed(3) : '—');
const load = async (dir: string): Promise<RegionSample[]> =>
  (await loadRegionCohort(dir, { onRefused: (_id, message) => refused.push(message) })).samples;

async function central(train: readonly RegionSample[]): Promise<Tensors> {
  const trainer = new RegionTrainer(initialRegionWeights(SEED, hidden), { hidden, learningRate: lr });
  try {
    await trainer.fit(train, { epochs: rounds * epr, seed: roundSeed(SEED, 1), batchSize: batch, learningRate: lr });
    return trainer.getWeights();
  } finally {
    trainer.dispose();
  }
}

async function federated(edges: readonly (readonly RegionSample[])[]): Promise<Tensors> {
  let global = initialRegionWeights(SEED, hidden);
  for (let round = 1; round <= rounds; round++) {
    const updates = [];
    for (const [i, train] of edges.entries()) {
      const trainer = new RegionTrainer(global, { hidden, learningRate: lr });
      try {
        await trainer.fit(train, { epochs: epr, seed: roundSeed(SEED, round), batchSize: batch, learningRate: lr });
        updates.push({ edge: `edge-${i}`, datasetSize: train.length, tensors: trainer.getWeights() });
      } finally {
        trainer.dispose();
      }
    }
    global = fedAvg(updates, global);
  }
  return global;
}

async function compare(root: string): Promise<void> {
  const edges = [];
  for (const e of ['hospital-a', 'hospital-b']) edges.push(splitSamples(await load(path.join(root, e)), 0.2).train);
  const test = await load(path.join(root, 'test'));
  const c = evaluateRegionSamples(await central(edges.flat()), test, hidden);
  const f = evaluateRegionSamples(await federated(edges), test, hidden);
  const out: Record<string, unknown> = {
    root, train: edges.map((e) => e.length), test: test.length, refused: refused.length,
    v3: { initial: auc(evaluateRegionSamples(initialRegionWeights(SEED, hidden), test, hidden)), central: auc(c), federated: auc(f) },
  };
  if (process.env.SKIP_V2 !== '1') {
    const grid = { depth: 8, height: 16, width: 16 };
    const v2train = [];
    for (const e of ['hospital-a', 'hospital-b']) v2train.push(...splitSamples((await loadCohort(path.join(root, e), { grid })).samples, 0.2).train);
    const v2test = (await loadCohort(path.join(root, 'test'), { grid })).samples;
    const trainer = new AspectsTrainer(initialAspectsWeights(SEED, grid), { grid, learningRate: 3e-3 });
    try {
      await trainer.fit(v2train, { epochs: rounds * epr, seed: roundSeed(SEED, 1), batchSize: 4, learningRate: 3e-3 });
      out.v2 = { central: auc(evaluateSamples(trainer.getWeights(), v2test, grid)) };
    } finally {
      trainer.dispose();
    }
  }
  console.log(JSON.stringify(out));
}

async function cross(trainDirs: string, testDir: string): Promise<void> {
  const train = [];
  for (const d of trainDirs.split(',')) train.push(...splitSamples(await load(d), 0.2).train);
  const test = await load(testDir);
  console.log(JSON.stringify({ train: train.length, test: test.length, refused: refused.length, central: auc(evaluateRegionSamples(await central(train), test, hidden)) }));
}

const [command, a, b, c] = process.argv.slice(2);
await selectBackend();
if (command === 'compare' && a) await compare(a);
else if (command === 'cross' && a && b) await cross(a, b);
else if (command === 'independent' && a && b && c) await writeIndependentCohort(a, Number(b), Number(c));
else {
  console.error('usage: measure-region.js compare ROOT | cross TRAIN_DIR[,…] TEST_DIR | independent DIR COUNT SEED');
  process.exitCode = 2;
}
for (const r of refused) console.log(`left out: ${r}`);
