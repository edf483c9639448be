/**
 * One federation over HTTP with `lfs: true`: the no-op app with 200 MB of weights, 2 edges, one
 * round, every participant a process of its own under GNU time (%M: its peak RSS), talking to the
 * test git server and its LFS API. Prints each participant's peak as a multiple of the
 * checkpoint. The no-op app's weights are a fixed pattern, not random; nothing on the LFS path
 * compresses, so that does not change what travels. Nothing is asserted.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGitServer } from '../test/helpers/git-server.js';
import { PASSWORDS, PARTICIPANTS, baseUrl, participantDir, publishPlan, roleOf, type Participant } from '../test/helpers/remote-federation.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'fedgit.js');
const MB = 1024 * 1024;

function runTimed(home: string, name: Participant): Promise<{ code: number | null; peakKb: number; output: string }> {
  const child = spawn('/usr/bin/time', ['-f', 'peak-kb %M', process.execPath, CLI, roleOf(name), '--config', 'participant.yaml', '--exit-when-done'], { cwd: home, env: { ...process.env, FEDGIT_TOKEN: PASSWORDS[name] }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output = (output + d).slice(-8000)));
  child.stderr.on('data', (d) => (output = (output + d).slice(-8000)));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, peakKb: Number(/peak-kb (\d+)/.exec(output)?.[1] ?? NaN), output })));
}

export async function benchLfsRound(sizeMb = 200): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-bench-lfs-round-'));
  const server = await startGitServer({
    users: { ...PASSWORDS },
    repos: { plan: { writers: ['admin'] }, global: { writers: ['aggregator'] }, 'edge-hospital-a': { writers: ['hospital-a'] }, 'edge-hospital-b': { writers: ['hospital-b'] } },
    lfs: true,
  });
  try {
    await publishPlan(server, dir, `name: lfsround\nrounds: 1\nedges: [hospital-a, hospital-b]\nroundDeadline: 30m\nlfs: true\napp:\n  id: noop\n  options: { sizeBytes: ${sizeMb * MB} }\n`);
    const started = performance.now();
    const results = await Promise.all(PARTICIPANTS.map(async (name) => [name, await runTimed(await participantDir(dir, name, roleOf(name), baseUrl(server)), name)] as const));
    const seconds = (performance.now() - started) / 1000;
    console.log(`one round over HTTP with lfs: true, 2 edges × ${sizeMb} MB (no-op app), ${seconds.toFixed(0)} s; peak RSS per participant (GNU time %M) as × the checkpoint`);
    for (const [name, r] of results) {
      if (r.code !== 0) throw new Error(`${name} exited ${r.code}: ${r.output.slice(-2000)}`);
      console.log(`${name.padEnd(11)} ${(r.peakKb / 1024).toFixed(0).padStart(6)} MB  ${((r.peakKb * 1024) / (sizeMb * MB)).toFixed(2)}×`);
    }
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
