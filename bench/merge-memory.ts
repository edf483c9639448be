/**
 * Aggregator memory per merge (issue 12): peak RSS of a process that runs one real aggregator merge
 * of N edges × 50 MB (noop app, fedavg), for N = 8 and 32, beside the same merge holding every
 * update in memory first, in the same run. Also what one round adds to the global and edge
 * repositories on disk, loose and after `git repack`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Repository } from '../operator/git/repository.js';
import { commitEdgeUpdate, commitPlan, readGlobalHead, reposUnder } from '../operator/store/federation.js';
import { parsePlan, type CommittedPlan } from '../operator/plan/plan.js';
import { AggregatorOperator } from '../operator/reconcile/aggregator-operator.js';
import { createOpener } from '../operator/store/open-repository.js';
import { SILENT } from '../operator/runtime/silent-log.js';
import { builtinRegistries } from '../bin/registries.js';
import type { Tensors } from '../operator/contracts.js';
import { gaussian, mulberry32 } from '../edge-app/random.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'merge-memory-worker.js');
const MB = 1024 * 1024;

type Run = { ms: number; maxRssKb: number };

function runWorker(mode: 'aggregator' | 'hold' | 'idle', repos: string, planId: string): Run {
  const r = spawnSync(process.execPath, [WORKER, mode, repos, planId], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`merge worker (${mode}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
}

/** A plan of `edges` edges on the noop app, round 0 committed by a real aggregator, and one round-1 update per edge. */
export async function federation(dir: string, edges: number, sizeBytes: number): Promise<{ repos: string; plan: CommittedPlan }> {
  const names = Array.from({ length: edges }, (_, k) => `edge-${String(k).padStart(2, '0')}`);
  const yaml = `name: memory\nrounds: 1\nedges: [${names.join(', ')}]\nroundDeadline: 10m\napp:\n  id: noop\n  options: { sizeBytes: ${sizeBytes} }\n`;
  const planned = parsePlan(yaml, 'plan.yaml', builtinRegistries);
  const repos = path.join(dir, 'repos');
  const where = reposUnder(repos, names);
  const planRepo = await Repository.ensureBare(where.plan);
  const global = await Repository.ensureBare(where.global);
  await writeFile(path.join(dir, 'plan.yaml'), yaml);
  const plan: CommittedPlan = { id: (await commitPlan(planRepo, yaml, planned)).id, plan: planned, text: yaml };
  await new AggregatorOperator({ locate: () => reposUnder(repos, names), open: createOpener(), ...builtinRegistries, log: SILENT }).reconcile();
  const base = (await readGlobalHead(global, plan))!.oid;
  const initial = await builtinRegistries.apps.initialWeights('noop', { sizeBytes }, 0);
  const architecture = builtinRegistries.apps.architecture('noop', { sizeBytes });
  for (const [k, edge] of names.entries()) {
    // Noise, as trained float weights are: anything regular would compress when repacked.
    const random = mulberry32(k + 1);
    const tensors: Tensors = new Map([...initial].map(([name, t]) => [name, { shape: t.shape, data: t.data.map((v) => v + gaussian(random) * 0.05) }]));
    const repo = await Repository.ensureBare(where.edges[edge]!);
    await commitEdgeUpdate(repo, { plan, edge, round: 1, base, architecture, tensors, datasetSize: 100 + k, metrics: { global: {}, local: {} } });
  }
  return { repos, plan };
}

/** Bytes of a repository's loose objects and packs. */
async function objectBytes(gitdir: string): Promise<{ loose: number; packed: number }> {
  let loose = 0, packed = 0;
  const objects = path.join(gitdir, 'objects');
  for (const entry of await readdir(objects)) {
    const sub = path.join(objects, entry);
    if (!/^[0-9a-f]{2}$/.test(entry) && entry !== 'pack') continue;
    for (const file of await readdir(sub)) {
      const bytes = (await stat(path.join(sub, file))).size;
      if (entry === 'pack') packed += bytes;
      else loose += bytes;
    }
  }
  return { loose, packed };
}

/** The repository's object bytes after `git repack -a -d` of a copy (the repository itself stays as fedgit wrote it). */
async function packedBytes(gitdir: string, scratch: string): Promise<number> {
  await rm(scratch, { recursive: true, force: true });
  await cp(gitdir, scratch, { recursive: true });
  execFileSync('git', ['--git-dir', scratch, 'repack', '-a', '-d', '-q']);
  const { loose, packed } = await objectBytes(scratch);
  await rm(scratch, { recursive: true, force: true });
  return loose + packed;
}

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

export async function benchMergeMemory(edgeCounts: readonly number[] = [8, 32], sizeBytes = 50 * MB): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-merge-'));
  try {
    const idle = runWorker('idle', dir, '');
    console.log(`aggregator peak RSS, one fedavg merge of N edges × ${sizeBytes / MB} MB (noop app), each in its own process; idle process with the same modules: ${mb(idle.maxRssKb)}`);
    console.log('edges  streaming (the aggregator)   holding every update (same merge)   streaming / holding');
    for (const edges of edgeCounts) {
      const fed = await federation(path.join(dir, `n${edges}`), edges, sizeBytes);
      const hold = runWorker('hold', fed.repos, fed.plan.id);
      const globalDir = reposUnder(fed.repos, []).global;
      const before = await objectBytes(globalDir);
      const streaming = runWorker('aggregator', fed.repos, fed.plan.id);
      const after = await objectBytes(globalDir);
      console.log(`${String(edges).padStart(5)}  ${mb(streaming.maxRssKb).padStart(8)} (${(streaming.ms / 1000).toFixed(1)} s)              ${mb(hold.maxRssKb).padStart(8)} (${(hold.ms / 1000).toFixed(1)} s)                  ${(streaming.maxRssKb / hold.maxRssKb).toFixed(2)}`);
      if (edges === edgeCounts[0]) await reportStorage(fed, before, after, path.join(dir, 'scratch.git'));
      await rm(path.join(dir, `n${edges}`), { recursive: true, force: true });
    }
    console.log('streaming: the aggregator process (observe: every update read and checked a 1 MiB window at a time; merge: each read again the same way, straight into float64 sums; commit: the merged checkpoint written from the sums\' memory).');
    console.log('holding: every update read, then the same merge over all of them; the aggregator before streaming was measured at 796 MB for 8 edges (issue 12).');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What round 1 added to the global repository and what one edge's update takes, loose and repacked. */
async function reportStorage(fed: { repos: string; plan: CommittedPlan }, before: { loose: number }, after: { loose: number }, scratch: string): Promise<void> {
  const where = reposUnder(fed.repos, fed.plan.plan.edges.map((e) => e.name));
  const edgeDir = where.edges[fed.plan.plan.edges[0]!.name]!;
  const edge = await objectBytes(edgeDir);
  const globalPacked = await packedBytes(where.global, scratch);
  const x = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
  console.log(`storage per round (${fed.plan.plan.edges.length} edges): global repository +${x(after.loose - before.loose)} loose (round 0 + 1 repacked: ${x(globalPacked)} for ${x(after.loose)} loose); ` +
    `each edge repository +${x(edge.loose)} loose (${x(await packedBytes(edgeDir, scratch))} repacked)`);
}
