/**
 * One hostile or broken edge repository, with the plan's default settings (every edge must push):
 * a NaN update forged on an edge's branch before it trains, one forged on top of its honest
 * update, and one whose tensor name carries NUL and ESC. Real processes on real repositories.
 * Each run must end tagged with the honest update merged, the forged commit named in the global
 * history, `git fsck --strict` clean everywhere, and the aggregator idle while it waits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { tempDir, startCli, exited, git, sleep, waitFor } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { fsckStrict, gitdirsUnder, globalLog } from './helpers/chaos.js';
import { Repository } from '../operator/git/repository.js';
import { planBranch } from '../operator/git/names.js';
import { commitEdgeUpdate, readEdgeHistory, readFinalTag, readGlobalHead, readRecordedRejections, readWeights } from '../operator/store/federation.js';
import type { CommittedPlan } from '../operator/plan/plan.js';
import type { Tensors } from '../operator/contracts.js';

const EDGES = ['hospital-a', 'hospital-b'];
const PLAN = `name: hostile
rounds: 2
edges: [${EDGES.join(', ')}]
roundDeadline: 10m
seed: 7
app:
  id: linear-toy
  options: { features: 8, samplesPerEdge: 50 }
`;

type Forgery = 'nan' | 'control-characters';

function forgedTensors(round0: Tensors, kind: Forgery): Tensors {
  const out = new Map(round0);
  if (kind === 'nan') {
    const w = out.get('linear.weight')!;
    out.set('linear.weight', { shape: w.shape, data: w.data.map((v, i) => (i === 3 ? NaN : v)) });
  } else {
    out.set('evil\u0000\u001b[31m\r', { shape: [1], data: Float32Array.of(1) });
  }
  return out;
}

/** A commit on `edge`'s branch that the edge did not push (no journal entry; written with fedgit's own writer). */
async function forge(plan: CommittedPlan, gitdir: string, edge: string, base: { oid: string; round: number }, tensors: Tensors): Promise<string> {
  return commitEdgeUpdate(new Repository(gitdir), {
    plan, edge, round: base.round + 1, base: base.oid, architecture: 'linear-toy/v1', tensors, datasetSize: 50, metrics: { global: {}, local: {} },
  });
}

/** CPU seconds a process has used (user + system), from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function scenario(t: { after: (fn: () => Promise<void>) => void }, when: 'before-training' | 'on-top-of-honest', kind: Forgery) {
  const dir = await tempDir(t, 'fedgit-hostile-');
  const { plan, repos, where } = await setUpFederation(dir, PLAN);
  const logs = path.join(dir, 'logs');
  const children: Array<ReturnType<typeof startCli>> = [];
  t.after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
  });
  const start = (...args: string[]) => {
    const child = startCli([...args, '--repos', repos, '--logs', logs, '--exit-when-done'], { cwd: dir });
    children.push(child);
    return child;
  };
  const global = new Repository(where.global);
  const branch = planBranch(plan.plan.name, plan.id);
  const aggregator = start('aggregator');
  const round0 = await waitFor('round 0', () => readGlobalHead(global, plan));
  const forgedTensorsOf = forgedTensors(await readWeights(global, round0.oid), kind);

  let forged: string;
  if (when === 'before-training') {
    forged = await forge(plan, where.edges['hospital-b']!, 'hospital-b', round0, forgedTensorsOf);
  } else {
    // hospital-b pushes its honest update alone; the forgery goes on top of it before hospital-a is there.
    const b = start('edge', '--name', 'hospital-b');
    const honest = await waitFor('hospital-b round 1', async () => (await readEdgeHistory(new Repository(where.edges['hospital-b']!), plan))[0]);
    forged = await forge(plan, where.edges['hospital-b']!, 'hospital-b', round0, forgedTensorsOf);
    assert.notEqual(forged, honest.oid);
    void b;
  }
  await waitFor('the refusal recorded', async () => (await readRecordedRejections(global, plan, round0.oid)).some((r) => r.commit === forged), 30_000);

  // Waiting on a bad update costs next to nothing: a few seconds of CPU time and log lines.
  const cpuBefore = await cpuSeconds(aggregator.pid!);
  const linesBefore = aggregator.output().split('\n').length;
  await sleep(3_000);
  const idleCpu = (await cpuSeconds(aggregator.pid!)) - cpuBefore;
  const idleLines = aggregator.output().split('\n').length - linesBefore;
  console.log(`hostile-edge ${when}/${kind}: aggregator used ${(idleCpu / 3 * 100).toFixed(1)} % of a core and wrote ${idleLines} log lines in 3 s while waiting on a refused update`);
  assert.ok(idleLines <= 3, `the aggregator wrote ${idleLines} lines while waiting:\n${aggregator.output()}`);
  assert.ok(idleCpu < 1.5, `the aggregator used ${idleCpu} s of CPU in 3 s while waiting`);

  if (when === 'before-training') start('edge', '--name', 'hospital-b');
  start('edge', '--name', 'hospital-a');
  await waitFor('the final tag', () => readFinalTag(global, plan), 120_000);
  for (const c of children) assert.equal(await exited(c), 0, c.output());

  const history = globalLog(where.global, branch);
  const round1 = history.find((h) => h.round === '1')!;
  const bMerged = round1.merged.find((m) => m.startsWith('hospital-b '));
  assert.ok(bMerged, `hospital-b's honest update is merged in round 1: ${JSON.stringify(round1)}`);
  assert.ok(!bMerged.includes(forged), 'the forged commit is not what was merged');
  const named = round1.rejected.find((r) => r.startsWith(`hospital-b ${forged} `));
  assert.ok(named, `round 1 names the forged commit: ${JSON.stringify(round1.rejected)}`);
  assert.match(named, kind === 'nan' ? /non-finite value/ : /unexpected tensor evil\\x00\\x1b\[31m\\x0d/);
  const edgeOwn = (await readEdgeHistory(new Repository(where.edges['hospital-b']!), plan)).find((r) => r.oid === bMerged.split(' ')[1]);
  assert.ok(edgeOwn && edgeOwn.oid !== forged, "the merged hospital-b commit is on hospital-b's branch");
  for (const gitdir of await gitdirsUnder(repos)) fsckStrict(gitdir);
  const rejectedLog = git(where.global, 'log', '--format=%B', `refs/heads/fedgit-rejected/hostile-${plan.id.slice(0, 8)}`);
  assert.ok(!/[\u0000\u001b\r]/.test(rejectedLog), 'no raw control character in the global history');
  assert.ok(!/[\u0000\u001b]/.test(aggregator.output()), 'no raw control character on the console');
}

for (const [when, kind] of [['before-training', 'nan'], ['on-top-of-honest', 'nan'], ['before-training', 'control-characters']] as const) {
  test(`a ${kind === 'nan' ? 'NaN' : 'NUL/ESC-named'} update forged ${when === 'before-training' ? "on an edge's branch before it trains" : 'on top of its honest update'}: the run ends tagged with the honest update merged`, { timeout: 180_000 }, (t) => scenario(t, when, kind));
}
