/** `fedgit run` supervises its participants: a child killed with SIGKILL is restarted (with a line saying so) and the run still finishes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { tempDir, startCli, exited, git, writePlan, toyPlan, waitFor } from './helpers/temp.js';
import { fsckStrict, globalLog } from './helpers/chaos.js';

/** The pid a participant wrote in the first line of its JSON log ("… started (pid N)"), once it is there. */
async function loggedPid(logs: string, participant: string, after = 0): Promise<number | undefined> {
  const text = await readFile(path.join(logs, `${participant}.jsonl`), 'utf8').catch(() => '');
  const pids = text.split('\n').filter(Boolean).map((l) => /started \(pid (\d+)\)/.exec((JSON.parse(l) as { message: string }).message)?.[1]).filter((p): p is string => p !== undefined).map(Number);
  return pids.slice(after)[0];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('fedgit run restarts a child killed with SIGKILL (edge, then aggregator) and still finishes', { timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-chaos-run-');
  const rounds = 5;
  const planFile = await writePlan(dir, 'toy.yaml', toyPlan({ rounds, epochDelayMs: 400 }));
  const run = startCli(['run', planFile, '--timeout', '150'], { cwd: dir });
  t.after(() => run.kill('SIGKILL'));
  const logs = path.join(dir, 'logs');
  const gitdir = path.join(dir, 'repos', 'global.git');
  const round = () => globalLog(gitdir, '--all').map((h) => Number(h.round)).reduce((a, b) => Math.max(a, b), -1);

  // Kill an edge mid-run, while it trains round 2.
  const edgePid = await waitFor('hospital-a started', () => loggedPid(logs, 'hospital-a'), 60_000);
  await waitFor('round 1 merged', async () => { try { return round() >= 1; } catch { return false; } }, 90_000, 50);
  assert.ok(alive(edgePid), `hospital-a (pid ${edgePid}) is running`);
  process.kill(edgePid, 'SIGKILL');
  await waitFor('the restart line for hospital-a', async () => /\[run\] hospital-a exited \(SIGKILL\); restarting in [\d.]+ s/.test(run.output()), 30_000);
  const newEdgePid = await waitFor('hospital-a restarted', () => loggedPid(logs, 'hospital-a', 1), 60_000);
  assert.notEqual(newEdgePid, edgePid);

  // And the aggregator too, while the plan is unfinished: the rounds cannot have run ahead, since every
  // round waits for hospital-a (the 10-minute round deadline is far off), which was down until just now.
  const aggregatorPid = (await loggedPid(logs, 'aggregator'))!;
  assert.ok(round() < rounds, `the plan is unfinished (global round ${round()} of ${rounds}) when the aggregator is killed`);
  assert.ok(alive(aggregatorPid), `the aggregator (pid ${aggregatorPid}) is running`);
  process.kill(aggregatorPid, 'SIGKILL');
  await waitFor('the restart line for the aggregator', async () => /\[run\] aggregator exited \(SIGKILL\); restarting in [\d.]+ s/.test(run.output()), 30_000);

  assert.equal(await exited(run), 0, run.output().slice(-4000));
  const out = run.output();
  assert.match(out, /Final weights: .*global\.git at [0-9a-f]{40}/);
  const tags = git(gitdir, 'tag').trim().split('\n');
  assert.equal(tags.length, 1);
  assert.match(tags[0]!, /^inference-toy-[0-9a-f]{8}$/);
  assert.deepEqual(globalLog(gitdir, tags[0]!).map((h) => h.round), ['5', '4', '3', '2', '1', '0']);
  fsckStrict(gitdir);
  const restartLines = out.split('\n').filter((l) => /\[run\] \S+ exited \(SIGKILL\); restarting in/.test(l));
  assert.equal(restartLines.length, 2, `one restart line per SIGKILL:\n${restartLines.join('\n')}`);
  console.log(`chaos-supervisor: ${restartLines.length} SIGKILLs of fedgit run's children, each restarted with a line (${restartLines.map((l) => l.replace(/^.*\[run\] /, '')).join(' | ')}); run exit 0, tagged, rounds 5..0 once each`);
});
