/**
 * Secure aggregation's cost per round against the plain round, side by side in one run: the same
 * federation (noop app, 1M float32 parameters = 4 MB, 3 edges, local repositories, in-process),
 * rounds with plain FedAvg, with secure FedAvg, and with secure FedAvg where one edge drops out
 * (recovery request, two reveals). Edge time is what happens after training (masking + commit);
 * aggregator time is from the last push to the merge commit. Bytes are the weights file per edge.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { createOpener } from '../operator/store/open-repository.js';
import { commitEdgeUpdate, commitPlan, readGlobalHead, readWeights, reposUnder } from '../operator/store/federation.js';
import { Repository } from '../operator/git/repository.js';
import { WEIGHTS_FILE } from '../operator/git/names.js';
import { parsePlan, type CommittedPlan } from '../operator/plan/plan.js';
import { generateAgreementKeyPair, parseAgreementPrivateKey } from '../operator/secagg/agreement-keys.js';
import { maskForPush, seedsToReveal } from '../operator/secagg/edge-secure.js';
import { commitReveal } from '../operator/store/secure-records.js';
import { trustedRecoveryRequest } from '../operator/secagg/aggregator-secure.js';
import { SILENT as silentLog } from '../operator/runtime/silent-log.js';
import { builtinRegistries } from '../bin/registries.js';
import type { Tensors } from '../operator/contracts.js';

const EDGES = ['edge-a', 'edge-b', 'edge-c'];
const SIZE_BYTES = 4_000_000;
const ROUNDS = 3;

type Mode = 'plain' | 'secure' | 'secure, 1 dropout';
type Figures = { edgeMs: number[]; aggregatorMs: number[]; weightsBytes: number[]; recoveryBytes: number };

function planYaml(mode: Mode, keys: Record<string, string>): string {
  const edges = EDGES.map((e) => (mode === 'plain' ? `  - ${e}` : `  - { name: ${e}, agreementKey: '${keys[e]}' }`)).join('\n');
  return `name: bench\nrounds: ${ROUNDS}\nedges:\n${edges}\nminEdges: 2\nroundDeadline: 10m\n${mode === 'plain' ? '' : 'secureAggregation: {}\n'}app:\n  id: noop\n  options: { sizeBytes: ${SIZE_BYTES} }\n`;
}

const perturbed = (previous: Tensors, edge: number, round: number): Tensors =>
  new Map([...previous].map(([name, t]) => [name, { shape: t.shape, data: Float32Array.from(t.data, (v, i) => v + (((i * 7919 + edge * 104729 + round) % 2001) - 1000) * 1e-6) }]));

async function federation(dir: string, mode: Mode) {
  const pairs = Object.fromEntries(EDGES.map((e) => [e, generateAgreementKeyPair()]));
  const yaml = planYaml(mode, Object.fromEntries(EDGES.map((e) => [e, pairs[e]!.publicKey])));
  const plan = parsePlan(yaml, 'plan.yaml', builtinRegistries);
  const where = reposUnder(dir, EDGES);
  const planRepo = await Repository.ensureBare(where.plan);
  await Repository.ensureBare(where.global);
  for (const e of EDGES) await Repository.ensureBare(where.edges[e]!);
  const committed: CommittedPlan = { id: (await commitPlan(planRepo, yaml, plan)).id, plan, text: yaml };
  let aheadMs = 0;
  const aggregator = new AggregatorOperator({ locate: (e) => reposUnder(dir, e), open: createOpener(), ...builtinRegistries, log: silentLog, now: () => Date.now() + aheadMs });
  const settle = async () => { for (let i = 0; i < 20 && (await aggregator.reconcile())?.lookAgain; i++); };
  await settle();
  const keys: Record<string, KeyObject> = Object.fromEntries(EDGES.map((e) => [e, parseAgreementPrivateKey(pairs[e]!.privateKeyPem)]));
  return { plan: committed, where, global: await aggregator.global(), settle, keys, passDeadline: () => (aheadMs = 11 * 60_000), resetClock: () => (aheadMs = 0) };
}

async function benchMode(mode: Mode): Promise<Figures> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-secagg-'));
  const figures: Figures = { edgeMs: [], aggregatorMs: [], weightsBytes: [], recoveryBytes: 0 };
  try {
    const f = await federation(dir, mode);
    for (let round = 1; round <= ROUNDS; round++) {
      const head = (await readGlobalHead(f.global, f.plan))!;
      const previous = await readWeights(f.global, head.oid);
      const pushing = mode === 'secure, 1 dropout' ? EDGES.slice(0, 2) : EDGES;
      for (const [k, edge] of pushing.entries()) {
        const tensors = perturbed(previous, k, round);
        const repo = new Repository(f.where.edges[edge]!);
        const started = performance.now();
        const masked = mode === 'plain' ? undefined : maskForPush(f.plan, f.keys[edge]!, { edge, round, tensors, previous, datasetSize: 10 + k });
        const oid = await commitEdgeUpdate(repo, { plan: f.plan, edge, round, base: head.oid, architecture: 'noop/v1', tensors, datasetSize: 10 + k, metrics: { global: {}, local: {} }, ...(masked ? { masked } : {}) });
        figures.edgeMs.push(performance.now() - started);
        figures.weightsBytes.push((await repo.readFile(oid, WEIGHTS_FILE)).length);
      }
      const started = performance.now();
      if (mode === 'secure, 1 dropout') await recover(f, head.oid, figures);
      else await f.settle();
      figures.aggregatorMs.push(performance.now() - started);
      if ((await readGlobalHead(f.global, f.plan))!.round !== round) throw new Error(`${mode}: round ${round} did not merge`);
    }
    return figures;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The deadline passes without edge-c: request, the two survivors' reveals, the merge (reveals timed with the round). */
async function recover(f: Awaited<ReturnType<typeof federation>>, base: string, figures: Figures): Promise<void> {
  f.passDeadline();
  try {
    await f.settle();
    const request = (await trustedRecoveryRequest(f.global, f.plan, base))!;
    for (const edge of request.survivors.map((s) => s.edge)) {
      const repo = new Repository(f.where.edges[edge]!);
      const oid = await commitReveal(repo, { plan: f.plan, edge, round: request.round, request: request.oid, seeds: seedsToReveal(f.plan, f.keys[edge]!, edge, request) });
      figures.recoveryBytes += (await repo.readCommit(oid)).message.length;
    }
    await f.settle();
  } finally {
    f.resetClock();
  }
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function benchSecureAggregation(): Promise<void> {
  console.log(`secure aggregation: noop app, ${SIZE_BYTES / 1e6} MB float32 weights (${SIZE_BYTES / 4} parameters), ${EDGES.length} edges, local repositories, in-process, ${ROUNDS} rounds each`);
  const results = new Map<Mode, Figures>();
  for (const mode of ['plain', 'secure', 'secure, 1 dropout'] as const) results.set(mode, await benchMode(mode));
  const plain = results.get('plain')!;
  for (const [mode, r] of results) {
    const edge = median(r.edgeMs), aggregator = median(r.aggregatorMs), bytes = median(r.weightsBytes);
    console.log(`  ${mode.padEnd(18)} edge (mask + commit) median ${edge.toFixed(0)} ms (×${(edge / median(plain.edgeMs)).toFixed(2)}), ` +
      `aggregator (last push → merge) median ${aggregator.toFixed(0)} ms (×${(aggregator / median(plain.aggregatorMs)).toFixed(2)}), ` +
      `weights per edge ${(bytes / 1e6).toFixed(2)} MB (×${(bytes / median(plain.weightsBytes)).toFixed(2)})` +
      (r.recoveryBytes ? `, recovery records ${(r.recoveryBytes / ROUNDS).toFixed(0)} bytes of commit messages per round` : ''));
  }
}
