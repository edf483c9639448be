/**
 * Many edges against one aggregator on one machine: the aggregator is its own process (as in a
 * deployment) and the edges are lightweight participants inside this process (the no-op app,
 * 1 MB of weights, local repositories). Reports the time per round and the aggregator's CPU per
 * round (from /proc), so the aggregator's cost can be read against the number of edges; the
 * edges' own work shares this process's core and is part of the round time, not of the CPU figure.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinRegistries } from '../bin/registries.js';
import { ParticipantSchema, resolveParticipant } from '../operator/config/participant.js';
import { Repository } from '../operator/git/repository.js';
import { parsePlan } from '../operator/plan/plan.js';
import { startParticipant, type RunningParticipant } from '../operator/runtime/participant.js';
import { commitPlan, reposUnder } from '../operator/store/federation.js';
import { edgeNames, noopPlan } from './orchestration.js';
import { describeRounds, measuredPerRound, roundStats, watchGlobalBranch, type RoundStats } from './round-stats.js';
import { cpuMsOf } from './process-cpu.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedgit.js');

async function prepare(root: string, edges: readonly string[], rounds: number): Promise<void> {
  const where = reposUnder(root, edges);
  const text = noopPlan(rounds, edges, 1_000_000);
  const planRepo = await Repository.ensureBare(where.plan);
  await Repository.ensureBare(where.global);
  for (const gitdir of Object.values(where.edges)) await Repository.ensureBare(gitdir);
  await commitPlan(planRepo, text, parsePlan(text, 'noop.yaml', builtinRegistries));
}

function startEdge(root: string, name: string, pollInterval: string): Promise<RunningParticipant> {
  const parsed = ParticipantSchema.parse({ role: 'edge', name, repos: { root }, logs: path.join(root, 'logs'), pollInterval });
  return startParticipant(resolveParticipant(parsed, path.join(root, `${name}.yaml`)), builtinRegistries, { exitWhenDone: true, console: false });
}

export type SimulationResult = { readonly rounds: RoundStats; readonly aggregatorCpuMsPerRound: number };

/**
 * `pollInterval`: every participant's safety-net poll of its local repositories. Set it longer
 * than the run and a round that waits for it shows as a stall: every wake-up then came from the watch.
 */
export async function simulate(edgeCount: number, rounds: number, pollInterval = '1s'): Promise<SimulationResult> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-sim-'));
  const edges = edgeNames(edgeCount);
  const running: RunningParticipant[] = [];
  await writeFile(path.join(root, 'aggregator.yaml'), `role: aggregator\nrepos: { root: . }\nlogs: logs\npollInterval: ${pollInterval}\n`);
  const aggregator = spawn(process.execPath, [CLI, 'aggregator', '--config', path.join(root, 'aggregator.yaml'), '--exit-when-done'], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await prepare(root, edges, rounds);
    for (const name of edges) running.push(await startEdge(root, name, pollInterval));
    const exited = new Promise<number | null>((resolve) => aggregator.on('exit', resolve));
    const seen = await watchGlobalBranch(path.join(root, 'global.git'), exited, () => cpuMsOf(aggregator.pid!));
    if ((await exited) !== 0) throw new Error(`the aggregator of the ${edgeCount}-edge simulation failed`);
    return { rounds: roundStats(seen.slice(1)), aggregatorCpuMsPerRound: measuredPerRound(seen) };
  } finally {
    if (aggregator.exitCode === null) aggregator.kill('SIGKILL');
    await Promise.all(running.map((p) => p.stop()));
    await rm(root, { recursive: true, force: true });
  }
}

export async function benchSimulation(): Promise<void> {
  console.log('simulation: one aggregator process, N no-op edges inside one process, 1 MB weights, local repositories');
  let base: SimulationResult | undefined;
  for (const [edges, rounds] of [[2, 20], [16, 10], [100, 5]] as const) {
    const r = await simulate(edges, rounds);
    base ??= r;
    console.log(`  ${String(edges).padStart(3)} edges: ${describeRounds(r.rounds)}; aggregator CPU ${r.aggregatorCpuMsPerRound.toFixed(0)} ms per round (×${(r.aggregatorCpuMsPerRound / base.aggregatorCpuMsPerRound).toFixed(1)} the 2-edge figure)`);
  }
}
