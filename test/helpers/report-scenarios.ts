/** Federations whose reports the report tests look at: one with the usual troubles, one with hostile names, an experiment's comparison. */
import { commitEdgeUpdate, commitRejections, readWeights } from '../../operator/store/federation.js';
import { Repository } from '../../operator/git/repository.js';
import type { Tensors } from '../../operator/contracts.js';
import { startToyFederation, type ToyFederation } from './toy-federation.js';

const EDGES3 = ['hospital-a', 'hospital-b', 'hospital-c'];

const withNaN = (t: Tensors): Tensors => {
  const out = new Map(t);
  const w = out.get('linear.weight')!;
  out.set('linear.weight', { shape: w.shape, data: w.data.map((v, i) => (i === 0 ? NaN : v)) });
  return out;
};

/**
 * Four rounds over three edges (min 2): round 2 merges without hospital-c after the deadline and
 * hospital-c's update for it arrives late, round 3 has a NaN update from hospital-b refused
 * before its honest one is merged, round 4 merges without hospital-a (nothing pushed).
 */
export async function troubledFederation(dir: string): Promise<ToyFederation> {
  const f = await startToyFederation(dir, { rounds: 4, edges: EDGES3, minEdges: 2 });
  await f.round();
  const round1 = await f.head();
  await f.round(['hospital-a', 'hospital-b']);
  await f.passDeadline();
  await f.push('hospital-c', { base: round1 });
  await f.settle();
  const head = await f.head();
  await f.push('hospital-b', { tensors: withNaN(await readWeights(f.global, head.oid)) });
  await f.settle();
  await f.round();
  await f.round(['hospital-b', 'hospital-c']);
  await f.passDeadline();
  return f;
}

/** What a hostile party can get into the repositories, written as HTML and script fragments. */
export const HOSTILE = {
  tensor: '<script>window.pwned="tensor"</script>',
  metric: '</script><script>window.pwned++</script>',
  edge: '<img/src=x/onerror=window.pwned="edge">',
  reason: `<script>window.pwned="reason"</script> & "quoted" 'single'`,
  claimed: '<b>forged"edge</b>',
};

/** Two rounds over two edges; hostile names in a refused tensor, a metric key, a refusal record and a forged edge commit. */
export async function hostileFederation(dir: string): Promise<ToyFederation> {
  const f = await startToyFederation(dir, { rounds: 2, edges: ['hospital-a', 'hospital-b'], minEdges: 2 });
  const round0 = await f.head();
  const weights = await readWeights(f.global, round0.oid);
  await f.push('hospital-a', { tensors: new Map([...weights, [HOSTILE.tensor, { shape: [1], data: Float32Array.of(1) }]]) });
  await f.settle();
  await commitRejections(f.global, { plan: f.plan, base: round0.oid, round: 1, entries: [{ edge: HOSTILE.edge, commit: 'e'.repeat(40), reason: HOSTILE.reason }] });
  const metrics = { global: { [HOSTILE.metric]: 0.25, loss: 0.7 }, local: { [HOSTILE.metric]: 0.5, loss: 0.6 } };
  await f.push('hospital-a', { metrics });
  await f.push('hospital-b', { metrics });
  await f.settle();
  await f.round();
  const head = await f.head();
  await commitEdgeUpdate(new Repository(f.where.edges['hospital-b']!), {
    plan: f.plan, edge: HOSTILE.claimed, round: 3, base: head.oid, architecture: 'linear-toy/v1', tensors: await readWeights(f.global, head.oid), datasetSize: 1, metrics: { global: {}, local: {} },
  });
  return f;
}

const REGIONS = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'];

/** A comparison.json as `fedgit experiment` writes it (the fields the report reads), with made-up figures. */
export function comparisonFixture(): Record<string, unknown> {
  const model = (auc: number) => ({
    n: 90, loss: 1 - auc, accuracy: auc - 0.02, macroAuc: auc,
    classes: { 0: { precision: auc, recall: auc - 0.01, f1: auc - 0.005, support: 690 }, 1: { precision: auc - 0.05, recall: auc - 0.06, f1: auc - 0.055, support: 210 } },
    regions: Object.fromEntries(REGIONS.map((r, i) => [r, { sensitivity: auc - i * 0.01, specificity: auc, auc: auc - i * 0.005, positives: 20 + i, negatives: 70 - i }])),
    aspects: { meanDifference: (1 - auc) * 3, meanAbsoluteDifference: (1 - auc) * 4, withinOnePercent: auc * 100, dichotomyAccuracy: auc - 0.03 },
  });
  return {
    kind: 'fedgit-experiment/v1',
    createdAt: '2026-01-01T00:00:00.000Z',
    settings: { rounds: 4, epochsPerRound: 1, engines: { 'hospital-a': 'tfjs', 'hospital-b': 'torch' }, volumes: { train: { 'hospital-a': 85, 'hospital-b': 85 }, test: 90 } },
    central: { epochs: [1, 2, 3, 4].map((epoch) => ({ epoch, trainLoss: 1 / epoch, validationLoss: 0.8 / epoch, validationMacroAuc: 1 - 0.2 / epoch })) },
    federated: {},
    test: { initial: model(0.3), central: model(0.95), federated: model(0.93) },
    predictions: predictionsFixture(),
    examples: [examplesFixture('scan-5.nii.gz')],
    timings: { total: 70 },
  };
}

/** Per-scan predictions as experiment/predictions.ts saves them: 20 scans, 0–5 affected regions each, each model wrong on some decisions. */
function predictionsFixture() {
  const scans = Array.from({ length: 20 }, (_, s) => ({ id: `scan-${s}.nii.gz`, labels: REGIONS.map((_, r) => (r < s % 6 ? 1 : 0)) }));
  const model = (quality: number, offset: number) => scans.map((scan, s) => scan.labels.map((l, r) => {
    const wrong = (s * 31 + r * 17 + offset) % Math.round(1 / (1 - quality)) === 0;
    const p = (l === 1) !== wrong ? quality : 1 - quality;
    return Math.round((p + (((s * 7 + r * 3) % 9) - 4) / 100) * 1e4) / 1e4;
  }));
  return { regions: REGIONS, threshold: 0.5, scans, probabilities: { initial: model(0.5, 0), central: model(0.9, 1), federated: model(0.85, 2) } };
}

/** One example as experiment/example-slices.ts writes it: a 24×20 slice, a bright disc, regions 1 (left half) and 5 (right half) in the middle rows. */
export function examplesFixture(id: string, width = 24, height = 20) {
  const image = Buffer.alloc(width * height);
  const regions = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      image[y * width + x] = (x - width / 2) ** 2 + (y - height / 2) ** 2 < 64 ? 200 : 30;
      if (y >= 6 && y < 14 && x >= 4 && x < 20) regions[y * width + x] = x < 12 ? 1 : 5;
    }
  }
  return { id, hemisphere: 'L', slices: [{ zMm: 4, width, height, pixelMm: 2, image: image.toString('base64'), regions: regions.toString('base64') }] };
}
