/**
 * The exit-status table of the README ("Exit status"): each status is produced by declared
 * error classes, and the CLI's single catch maps class → status. One subtest per class and per
 * status, so the runner names what broke.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  Aborted, AppFailed, CheckpointCorrupt, ConfigInvalid, DataInvalid, EXIT, FedgitError, LfsObjectMissing, NotFound, PlanInvalid,
  RefConflict, RefInvalid, RefLocked, RefUnreadable, RunTimedOut, SetupFailed, UnknownComponent, UsageError,
} from '../operator/errors.js';
import { KeyFileRefused, KeyInvalid, StatementInvalid } from '../operator/trust/errors.js';
import { HttpRequestFailed } from '../operator/remote/http-client.js';
import { PushRefused, RemoteDenied, RemoteUnreachable } from '../operator/remote/remote-link.js';
import { ExperimentFailed, ExperimentUsage, WeightsMismatch } from '../experiment/errors.js';
import { GridInvalid } from '../edge-app/aspects/spec.js';
import { runCli, tempDir } from './helpers/temp.js';

type Case = { error: FedgitError; exit: number; fatal: boolean };

const CASES: readonly Case[] = [
  { error: new UsageError('u'), exit: EXIT.usage, fatal: false },
  { error: new ExperimentUsage('u'), exit: EXIT.usage, fatal: false },
  { error: new PlanInvalid('p', { file: 'plan.yaml' }), exit: EXIT.invalid, fatal: false },
  { error: new ConfigInvalid('c', { file: 'edge.yaml' }), exit: EXIT.invalid, fatal: true },
  { error: new DataInvalid('d', { file: 'a.nii' }), exit: EXIT.invalid, fatal: true },
  { error: new KeyInvalid('k'), exit: EXIT.invalid, fatal: true },
  { error: new KeyFileRefused('k', { file: 'k.pem' }), exit: EXIT.invalid, fatal: true },
  { error: new UnknownComponent('app', 'x', ['noop']), exit: EXIT.invalid, fatal: false },
  { error: new GridInvalid('g', {}), exit: EXIT.invalid, fatal: false },
  { error: new WeightsMismatch('w'), exit: EXIT.invalid, fatal: false },
  { error: new NotFound('n'), exit: EXIT.failed, fatal: false },
  { error: new RefConflict('refs/heads/x', null, null), exit: EXIT.failed, fatal: false },
  { error: new RefInvalid('r', { ref: 'x' }), exit: EXIT.failed, fatal: false },
  { error: new RefLocked('r', { lockFile: 'x.lock' }), exit: EXIT.failed, fatal: false },
  { error: new RefUnreadable('r', { ref: 'x', gitdir: 'g' }), exit: EXIT.failed, fatal: false },
  { error: new CheckpointCorrupt('c'), exit: EXIT.failed, fatal: false },
  { error: new LfsObjectMissing('l', { oid: 'a'.repeat(64) }), exit: EXIT.failed, fatal: false },
  { error: new AppFailed('a'), exit: EXIT.failed, fatal: false },
  { error: new Aborted(), exit: EXIT.failed, fatal: false },
  { error: new RunTimedOut('t', { plan: 'p', timeoutMs: 1 }), exit: EXIT.failed, fatal: false },
  { error: new SetupFailed('s', { status: 500 }), exit: EXIT.failed, fatal: false },
  { error: new StatementInvalid('s', { field: 'f' }), exit: EXIT.failed, fatal: false },
  { error: new HttpRequestFailed('GET', 'https://x', 'down'), exit: EXIT.failed, fatal: false },
  { error: new RemoteUnreachable('https://x', 'down'), exit: EXIT.failed, fatal: false },
  { error: new RemoteDenied('https://x', 'no'), exit: EXIT.failed, fatal: false },
  { error: new PushRefused('https://x', 'refs/heads/x', 'hook'), exit: EXIT.failed, fatal: false },
  { error: new ExperimentFailed('e'), exit: EXIT.failed, fatal: false },
];

for (const c of CASES) {
  test(`${c.error.name} declares exit ${c.exit}${c.fatal ? ', fatal to a participant' : ''}`, () => {
    assert.equal(c.error.exitCode, c.exit);
    assert.equal(c.error.fatal, c.fatal);
    assert.equal(c.error.name, c.error.constructor.name);
    assert.match(c.error.code, /^[A-Z_]+$/);
  });
}

test('exit 0: a command that succeeds', async (t) => {
  const r = await runCli(['--help'], { cwd: await tempDir(t) });
  assert.equal(r.code, EXIT.ok, r.stderr);
  assert.match(r.stdout, /^usage: fedgit <command>/);
});

test('exit 1: a failure that is not bad input (NotFound: no repositories where --repos says)', async (t) => {
  const r = await runCli(['log', '--repos', 'nothing-here'], { cwd: await tempDir(t) });
  assert.equal(r.code, EXIT.failed, r.stderr);
  assert.match(r.stderr, /^fedgit: the plan repository: no git repository at nothing-here[/\\]plan\.git\n$/);
});

test('exit 2: usage (UsageError), for an unknown command and for a malformed flag', async (t) => {
  const cwd = await tempDir(t);
  const unknown = await runCli(['frobnicate'], { cwd });
  assert.equal(unknown.code, EXIT.usage, unknown.stderr);
  assert.match(unknown.stderr, /^fedgit: unknown command 'frobnicate'/);
  const flag = await runCli(['run', '--no-such-flag'], { cwd });
  assert.equal(flag.code, EXIT.usage, flag.stderr);
  assert.match(flag.stderr, /^fedgit: Unknown option '--no-such-flag'/);
  const keygen = await runCli(['keygen', '--out', 'k.pem', '--name', 'Not A Name'], { cwd });
  assert.equal(keygen.code, EXIT.usage, keygen.stderr);
});

test('exit 3: invalid input (PlanInvalid, ConfigInvalid)', async (t) => {
  const cwd = await tempDir(t);
  await writeFile(path.join(cwd, 'plan.yaml'), 'name: x\n');
  const plan = await runCli(['run', 'plan.yaml'], { cwd });
  assert.equal(plan.code, EXIT.invalid, plan.stderr);
  assert.match(plan.stderr, /^fedgit: plan\.yaml:1: rounds: /);
  await writeFile(path.join(cwd, 'edge.yaml'), 'role: nurse\n');
  const config = await runCli(['edge', '--config', 'edge.yaml'], { cwd });
  assert.equal(config.code, EXIT.invalid, config.stderr);
  assert.match(config.stderr, /^fedgit: edge\.yaml:1: role: /);
});

test('exit 2: the old command path (dist/operator/cli.js) says where the command is now', async (t) => {
  const dir = await tempDir(t);
  const old = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'operator', 'cli.js');
  const r = spawnSync(process.execPath, [old, 'status'], { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^fedgit: dist\/operator\/cli\.js is no longer the command; run dist\/bin\/fedgit\.js/);
});
