/**
 * Many machines: every participant a separate process with its own working
 * directory, sharing nothing but a real git server (git http-backend behind
 * nginx, basic auth per participant, write access per repository).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tempDir, startCli, exited, runCli, toyPlan, waitFor, sleep } from './helpers/temp.js';
import { PASSWORDS, participantDir, publishPlan, serverFor, startFederation } from './helpers/remote-federation.js';

const start = (home: string, role: string, token: string) =>
  startCli([role, '--config', 'participant.yaml', '--exit-when-done'], { cwd: home, env: { FEDGIT_TOKEN: token } });

test('a 2-edge run over HTTP with only the server in common finishes and audits, through a server restart mid-round', async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const base = server.url('plan').replace(/\/plan\.git$/, '');
  await publishPlan(server, dir, toyPlan({ rounds: 3, epochDelayMs: 400 }));
  const { homes, procs } = await startFederation(dir, base);
  t.after(() => procs.forEach((p) => p.kill('SIGKILL')));

  // Take the server away while round 1 trains, then bring it back.
  await waitFor('round 0 on the server', async () => /Fedgit-Round: 0/.test(execFileSync('git', ['--git-dir', server.gitdir('global'), 'log', '--all', '-1', '--format=%B'], { encoding: 'utf8' })), 30_000);
  await server.stopTemporarily();
  await sleep(2_500);
  await server.restart();

  for (const p of procs) assert.equal(await exited(p), 0, p.output().slice(-3000));
  const tags = execFileSync('git', ['--git-dir', server.gitdir('global'), 'tag'], { encoding: 'utf8' }).trim();
  assert.match(tags, /^inference-toy-[0-9a-f]{8}$/);
  const rounds = execFileSync('git', ['--git-dir', server.gitdir('global'), 'log', '--format=%(trailers:key=Fedgit-Round,valueonly,separator=)', tags], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(rounds, ['3', '2', '1', '0']);
  for (const repo of ['plan', 'global', 'edge-hospital-a', 'edge-hospital-b']) execFileSync('git', ['--git-dir', server.gitdir(repo), 'fsck', '--strict'], { stdio: 'pipe' });
  const aggregatorLog = await readFile(path.join(homes.aggregator, 'logs', 'aggregator.jsonl'), 'utf8');
  assert.match(aggregatorLog, /ECONNREFUSED|unreachable|refused|HTTP 50\d/i, 'the outage was noticed and survived');
  for (const [name, home] of Object.entries(homes)) {
    const log = await readFile(path.join(home, 'logs', `${name}.jsonl`), 'utf8');
    assert.ok(!log.includes(PASSWORDS[name as keyof typeof PASSWORDS]), `${name}'s token never reaches its log`);
  }

  // An auditor on yet another machine, with read access only, audits every merge over HTTP.
  const auditor = await participantDir(dir, 'hospital-b-audit', 'edge', base, '');
  await writeFile(path.join(auditor, 'participant.yaml'), `role: edge\nname: hospital-b\nrepos: { root: '${base}' }\nauth: { tokenEnv: FEDGIT_TOKEN }\n`);
  const commits = execFileSync('git', ['--git-dir', server.gitdir('global'), 'log', '--format=%H', tags], { encoding: 'utf8' }).trim().split('\n');
  for (const commit of commits) {
    const audit = await runCli(['audit', commit, '--config', 'participant.yaml'], { cwd: auditor, env: { FEDGIT_TOKEN: PASSWORDS['hospital-b'] } });
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  }
});

test("an edge that pushes to another edge's repository is refused by the server, logs it, and changes nothing", async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const base = server.url('plan').replace(/\/plan\.git$/, '');
  await publishPlan(server, dir, toyPlan({ rounds: 1 }));
  const aggregator = start(await participantDir(dir, 'aggregator', 'aggregator', base), 'aggregator', PASSWORDS.aggregator);
  t.after(() => aggregator.kill('SIGKILL'));
  // hospital-a, misconfigured (or malicious): its "own" repository is hospital-b's.
  const home = await participantDir(dir, 'hospital-a', 'edge', base, `  \nrepos_note: x\n`.replace(/.*\n.*\n/, ''));
  await writeFile(path.join(home, 'participant.yaml'), `role: edge\nname: hospital-a\nrepos:\n  root: '${base}'\n  edges: { hospital-a: '${server.url('edge-hospital-b')}' }\nauth: { tokenEnv: FEDGIT_TOKEN }\nlogs: logs\npollInterval: 250ms\n`);
  const before = execFileSync('git', ['--git-dir', server.gitdir('edge-hospital-b'), 'for-each-ref'], { encoding: 'utf8' });
  const edge = start(home, 'edge', PASSWORDS['hospital-a']);
  t.after(() => edge.kill('SIGKILL'));
  const log = path.join(home, 'logs', 'hospital-a.jsonl');
  await waitFor('the refused push in the edge log', async () => /HTTP 403/.test(await readFile(log, 'utf8').catch(() => '')), 60_000);
  edge.kill('SIGTERM');
  await exited(edge);
  assert.equal(execFileSync('git', ['--git-dir', server.gitdir('edge-hospital-b'), 'for-each-ref'], { encoding: 'utf8' }), before);
  assert.match(await readFile(log, 'utf8'), /nothing pushed/);
  assert.ok(server.accessLog().some((e) => e.user === 'hospital-a' && e.status === 403 && e.path.includes('edge-hospital-b')));
  aggregator.kill('SIGTERM');
  await exited(aggregator);
});

test('participants started while the server is down wait, retry, and finish once it comes up', async (t) => {
  const dir = await tempDir(t);
  const server = await serverFor(t);
  const base = server.url('plan').replace(/\/plan\.git$/, '');
  await publishPlan(server, dir, toyPlan({ rounds: 2 }));
  await server.stopTemporarily();
  const { homes, procs } = await startFederation(dir, base);
  t.after(() => procs.forEach((p) => p.kill('SIGKILL')));
  await waitFor('a failed attempt in the aggregator log', async () => /reconcile failed/.test(await readFile(path.join(homes.aggregator, 'logs', 'aggregator.jsonl'), 'utf8').catch(() => '')), 30_000);
  await server.restart();
  for (const p of procs) assert.equal(await exited(p), 0, p.output().slice(-3000));
  assert.match(execFileSync('git', ['--git-dir', server.gitdir('global'), 'tag'], { encoding: 'utf8' }), /^inference-toy-/);
});
