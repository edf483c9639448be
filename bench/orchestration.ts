/**
 * Orchestration overhead per round: a no-op app, 2 edges, 1 MB of weights,
 * local repositories. Milliseconds from one global commit to the next, seen by
 * polling the global branch, with everything else (training) taken out.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRef } from '../operator/git/refs.js';
import { listRefs } from '../operator/git/refs.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedgit.js');

export async function benchOrchestration(rounds = 20, sizeBytes = 1_000_000): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-orch-'));
  try {
    const plan = path.join(dir, 'noop.yaml');
    await writeFile(plan, `name: noop\nrounds: ${rounds}\nedges: [edge-a, edge-b]\nroundDeadline: 10m\napp:\n  id: noop\n  options: { sizeBytes: ${sizeBytes} }\n`);
    const global = path.join(dir, 'repos', 'global.git');
    const seen: Array<{ oid: string; at: number }> = [];
    const child = spawn(process.execPath, [CLI, 'run', plan, '--timeout', '600'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      const branch = [...(await listRefs(global, 'refs/heads/fedgit/').catch(() => new Map<string, string>())).keys()][0];
      const oid = branch ? await readRef(global, branch).catch(() => null) : null;
      if (oid && seen[seen.length - 1]?.oid !== oid) seen.push({ oid, at: performance.now() });
      await new Promise((r) => setTimeout(r, 2));
    }
    if ((await exited) !== 0) throw new Error('fedgit run failed');
    const gaps = seen.slice(1).map((s, i) => s.at - seen[i]!.at);
    const sorted = [...gaps].sort((a, b) => a - b);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    console.log(`orchestration: no-op app, 2 edges, ${(sizeBytes / 1e6).toFixed(1)} MB weights, local repositories, ${gaps.length} rounds observed`);
    console.log(`  per round (global commit → next global commit): median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, mean ${mean.toFixed(0)} ms, min ${sorted[0]!.toFixed(0)} ms, max ${sorted[sorted.length - 1]!.toFixed(0)} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
