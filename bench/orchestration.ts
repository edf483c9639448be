/**
 * Orchestration overhead per round: a no-op app, 1 MB of weights, local repositories, every
 * participant its own process (`fedgit run`). Milliseconds from one global commit to the next,
 * with training taken out: 50 rounds with 2 edges, then the same plan with 4, 8 and 16 edges,
 * each as a ratio to the 2-edge median of the same run.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeRounds, measuredPerRound, roundStats, watchGlobalBranch, type RoundStats } from './round-stats.js';
import { treeCpuMs } from './process-cpu.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedgit.js');

export const noopPlan = (rounds: number, edges: readonly string[], sizeBytes: number) =>
  `name: noop\nrounds: ${rounds}\nedges: [${edges.join(', ')}]\nroundDeadline: 10m\napp:\n  id: noop\n  options: { sizeBytes: ${sizeBytes} }\n`;

export const edgeNames = (count: number) => Array.from({ length: count }, (_, i) => `edge-${String(i + 1).padStart(3, '0')}`);

export type OrchestrationResult = RoundStats & {
  /** The CPU every process of the run (participants and `fedgit run`) spent per round, in ms. */
  readonly cpuMsPerRound: number;
};

/** One `fedgit run` of the no-op plan; the gaps between its global commits. */
export async function runNoop(edges: number, rounds: number, sizeBytes = 1_000_000): Promise<OrchestrationResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-orch-'));
  try {
    const plan = path.join(dir, 'noop.yaml');
    await writeFile(plan, noopPlan(rounds, edgeNames(edges), sizeBytes));
    const child = spawn(process.execPath, [CLI, 'run', plan, '--timeout', '900'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const seen = await watchGlobalBranch(path.join(dir, 'repos', 'global.git'), exited, () => treeCpuMs(child.pid!));
    if ((await exited) !== 0) throw new Error(`fedgit run with ${edges} edges failed`);
    return { ...roundStats(seen), cpuMsPerRound: measuredPerRound(seen) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function benchOrchestration(rounds = 50): Promise<void> {
  console.log('orchestration: no-op app, 1 MB weights, local repositories, one process per participant (fedgit run)');
  const cores = os.availableParallelism();
  const cpu = (s: OrchestrationResult) => `; all processes' CPU ${s.cpuMsPerRound.toFixed(0)} ms per round (on ${cores} cores a round takes at least ${(s.cpuMsPerRound / cores).toFixed(0)} ms)`;
  const two = await runNoop(2, rounds);
  console.log(`  2 edges: ${describeRounds(two)}${cpu(two)}`);
  for (const edges of [4, 8, 16]) {
    const s = await runNoop(edges, 20);
    console.log(`  ${edges} edges: ${describeRounds(s)}; median ×${(s.median / two.median).toFixed(2)} the 2-edge median${cpu(s)}`);
  }
}
