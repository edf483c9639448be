/**
 * The external-command adapter against a real process: a stand-in model
 * (test/fixtures/command/fake-model.py, standard-library Python) that follows
 * the contract or breaks it in one chosen way per test.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createCommandApp, type CommandAppOptions } from '../edge-app/command/command-app.js';
import type { Tensors, TrainRequest } from '../operator/contracts.js';
import { AppFailed, Aborted } from '../operator/errors.js';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/command/fake-model.py', import.meta.url));
const PYTHON = process.env.FEDGIT_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

let root: string;
let dataDir: string;
let tmpDir: string;

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fedgit-command-test-'));
  dataDir = path.join(root, 'data');
  tmpDir = path.join(root, 'tmp');
  fs.mkdirSync(dataDir);
  fs.mkdirSync(tmpDir);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

type Logged = { level: string; message: string }[];

function app(mode: string, extra: Partial<CommandAppOptions> = {}, logged: Logged = []) {
  return createCommandApp({
    command: [PYTHON, FIXTURE],
    dataDir,
    architecture: 'fake/v1',
    env: { FAKE_MODE: mode },
    retries: 0,
    killGraceMs: 300,
    tmpDir,
    log: {
      info: (message) => logged.push({ level: 'info', message }),
      warn: (message) => logged.push({ level: 'warn', message }),
      error: (message) => logged.push({ level: 'error', message }),
      debug: (message) => logged.push({ level: 'debug', message }),
    },
    ...extra,
  });
}

const weights: Tensors = new Map([
  ['a', { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
  ['b', { shape: [3], data: Float32Array.from([0.5, -0.5, 0]) }],
]);

function request(extra: Partial<TrainRequest> = {}): TrainRequest {
  return { weights, epochs: 2, round: 3, planId: 'plan-x', seed: 11, signal: new AbortController().signal, ...extra };
}

/** Rejects with AppFailed whose message matches every pattern. */
async function assertAppFailed(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<AppFailed> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof AppFailed, `expected AppFailed, got ${String(e)}`);
    assert.equal(e.code, 'APP_FAILED');
    for (const p of patterns) assert.match(e.message, p);
    return e;
  }
  assert.fail('expected the call to fail');
}

function workDirsLeft(): string[] {
  return fs.readdirSync(tmpDir);
}

/** Alive and not a zombie (a reparented zombie may wait a moment for init to reap it). */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

describe('command app: success', () => {
  it('train round trip: weights, datasetSize, metrics, progress, logs, temp dir removed', async () => {
    const logged: Logged = [];
    const progress: Array<[string, number | undefined]> = [];
    const result = await app('ok', {}, logged).train(request({ onProgress: (m, f) => progress.push([m, f]) }));
    assert.deepEqual([...result.weights.keys()].sort(), ['a', 'b']);
    assert.deepEqual([...result.weights.get('a')!.data], [2, 3, 4, 5]);
    assert.deepEqual([...result.weights.get('b')!.data], [1.5, 0.5, 1]);
    assert.equal(result.datasetSize, 7);
    assert.deepEqual(result.metrics, { global: { loss: 1 }, local: { loss: 0.5, epochs: 2 } });
    assert.deepEqual(progress, [['halfway', 0.5]]);
    assert.ok(logged.some((l) => l.message.includes('fake model train mode=ok round=3')), JSON.stringify(logged));
    assert.ok(logged.some((l) => l.message.includes('stderr line from train')));
    assert.deepEqual(workDirsLeft(), []);
  });

  it('evaluate returns the metrics object', async () => {
    const metrics = await app('ok').evaluate(weights, new AbortController().signal);
    assert.deepEqual(metrics, { loss: 0.25, auc: { C: 0.5 } });
    assert.deepEqual(workDirsLeft(), []);
  });

  it('init runs the command with FEDGIT_SEED', async () => {
    const init = await app('ok').initialWeights(5);
    assert.deepEqual([...init.get('layer.weight')!.data], [5, 6, 7, 8, 9, 10]);
    assert.deepEqual(init.get('layer.weight')!.shape, [2, 3]);
  });

  it('init uses the in-process initialWeights when given, without running the command', async () => {
    const init = await app('exit3', { initialWeights: () => weights }).initialWeights(5);
    assert.equal(init, weights);
  });

  it('retries a failed attempt', async () => {
    const state = path.join(root, 'fail-once-state');
    const logged: Logged = [];
    const result = await app('fail-once', { retries: 1, env: { FAKE_MODE: 'fail-once', FAKE_STATE: state } }, logged).train(request());
    assert.equal(result.datasetSize, 7);
    assert.ok(logged.some((l) => l.level === 'warn' && /attempt 1 of 2/.test(l.message)));
  });
});

describe('command app: failures are AppFailed with a clear reason', () => {
  it('non-zero exit, with the last lines of stderr', async () => {
    const e = await assertAppFailed(app('exit3').train(request()), /exited with code 3/, /CUDA out of memory/);
    assert.equal(e.data.exitCode, 3);
    assert.equal(e.data.action, 'train');
    assert.deepEqual(workDirsLeft(), []);
  });

  it('counts every attempt when retries run out', async () => {
    const e = await assertAppFailed(app('exit3', { retries: 2 }).evaluate(weights, new AbortController().signal), /after 3 attempts/);
    assert.equal(e.data.attempts, 3);
  });

  it('only the last lines of a long stderr', async () => {
    const e = await assertAppFailed(app('noisy').evaluate(weights, new AbortController().signal), /exited with code 1/, /noise 49/);
    assert.doesNotMatch(e.message, /noise 0\n/);
    assert.equal((e.data.stderrTail as string[]).at(-1), 'noise 49');
  });

  it('killed by a signal', async () => {
    await assertAppFailed(app('segv').train(request()), /killed by signal SIGSEGV/, /about to crash/);
  });

  it('a program that cannot start', async () => {
    const broken = createCommandApp({ command: [path.join(root, 'no-such-program')], dataDir, architecture: 'x', retries: 0 });
    await assertAppFailed(broken.evaluate(weights, new AbortController().signal), /could not start/, /ENOENT/);
  });

  it('missing output weights', async () => {
    await assertAppFailed(app('missing').train(request()), /did not write the output weights \(\$FEDGIT_OUTPUT_WEIGHTS\)/);
  });

  it('truncated output weights', async () => {
    await assertAppFailed(app('truncated').train(request()), /not a valid float32 safetensors file/, /exceeds the file|outside the/);
  });

  it('output weights that are not float32', async () => {
    await assertAppFailed(app('f16').train(request()), /not a valid float32 safetensors file/, /dtype "F16" is not F32/);
  });

  it('wrong tensor names', async () => {
    await assertAppFailed(app('wrong-names').train(request()), /names differ/, /missing a, b/, /unexpected renamed\.a, renamed\.b/);
  });

  it('wrong tensor shape', async () => {
    await assertAppFailed(app('wrong-shape').train(request()), /tensor b has shape \[1, 3\], expected \[3\]/);
  });

  it('wrong names or shapes against the spec at init', async () => {
    const spec = [{ name: 'layer.weight', shape: [3, 2] }, { name: 'layer.bias', shape: [2] }];
    await assertAppFailed(app('ok', { spec }).initialWeights(1), /tensor layer\.weight has shape \[2, 3\], expected \[3, 2\]/);
  });

  it('the caller-supplied validate rejects', async () => {
    const validate = () => {
      throw new RangeError('conv1.weight missing');
    };
    await assertAppFailed(app('ok', { validate }).train(request()), /do not match the model: conv1\.weight missing/);
  });

  it('NaN in the output weights', async () => {
    await assertAppFailed(app('nan').train(request()), /tensor a contains NaN at index 0/);
  });

  it('metrics that are not JSON', async () => {
    await assertAppFailed(app('bad-json').train(request()), /metrics file \(\$FEDGIT_METRICS\) is not valid JSON/);
    await assertAppFailed(app('bad-json').evaluate(weights, new AbortController().signal), /not valid JSON/);
  });

  it('train metrics without datasetSize', async () => {
    await assertAppFailed(app('no-dataset-size').train(request()), /no datasetSize/);
  });

  it('timeout', async () => {
    const started = Date.now();
    const e = await assertAppFailed(app('sleep', { timeoutMs: 500 }).train(request()), /timed out after 500 ms/);
    assert.equal(e.data.outcome, 'timed-out');
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(workDirsLeft(), []);
  });
});

describe('command app: abort', () => {
  it('SIGTERM then SIGKILL to the whole process group, then Aborted; no orphans', async () => {
    const pidsFile = path.join(root, 'pids');
    const controller = new AbortController();
    const running = app('ignore-term', { env: { FAKE_MODE: 'ignore-term', FAKE_PIDS: pidsFile }, killGraceMs: 400 }).train(
      request({ signal: controller.signal }),
    );
    while (!fs.existsSync(pidsFile) || !fs.readFileSync(pidsFile, 'utf8').endsWith('\n')) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const pids = fs.readFileSync(pidsFile, 'utf8').trim().split(' ').map(Number);
    assert.equal(pids.length, 2);
    assert.ok(pids.every(isAlive));
    const abortedAt = Date.now();
    controller.abort();
    await assert.rejects(running, (e: unknown) => e instanceof Aborted && e.code === 'ABORTED');
    assert.ok(Date.now() - abortedAt >= 350, 'SIGTERM is ignored, so only SIGKILL after the grace period ends it');
    for (let i = 0; i < 50 && pids.some(isAlive); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(pids.filter(isAlive), [], 'the command and its child are gone');
    assert.deepEqual(workDirsLeft(), []);
  });

  it('an already aborted signal never starts the command', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(app('ok').train(request({ signal: controller.signal })), Aborted);
  });

  it('close() stops a running command', async () => {
    const a = app('sleep', { killGraceMs: 200 });
    const running = a.train(request());
    await new Promise((r) => setTimeout(r, 300));
    await a.close();
    await assert.rejects(running, Aborted);
  });
});

describe('command app: inputs prepared by fedgit (FEDGIT_FEATURES)', () => {
  // Reports what it was given: the features file's path relative to its work dir and its content.
  const SCRIPT = [
    'import json, os, sys',
    'p = os.environ.get("FEDGIT_FEATURES")',
    'out = {"features": None if p is None else os.path.relpath(p, os.environ["FEDGIT_WORK_DIR"]),',
    '       "content": None if p is None else open(p).read()}',
    'json.dump(out, open(os.environ["FEDGIT_METRICS"], "w"))',
  ].join('\n');

  it('evaluate gets the file prepareInputs wrote into its work dir; without prepareInputs an inherited FEDGIT_FEATURES is not passed on', async () => {
    let calls = 0;
    const prepared = app('ok', {
      command: [PYTHON, '-c', SCRIPT],
      prepareInputs: async (workDir) => {
        calls++;
        fs.writeFileSync(path.join(workDir, 'features.safetensors'), `call ${calls}`);
        return { FEDGIT_FEATURES: path.join(workDir, 'features.safetensors') };
      },
    });
    const metrics = await prepared.evaluate(weights, new AbortController().signal);
    assert.deepEqual(metrics, { features: 'features.safetensors', content: 'call 1' });
    assert.equal(calls, 1);

    process.env.FEDGIT_FEATURES = '/somewhere/else.safetensors';
    try {
      const plain = app('ok', { command: [PYTHON, '-c', SCRIPT] });
      assert.deepEqual(await plain.evaluate(weights, new AbortController().signal), { features: null, content: null });
    } finally {
      delete process.env.FEDGIT_FEATURES;
    }
  });

  it('a failing prepareInputs is AppFailed naming the cause, without starting the program or retrying', async () => {
    let calls = 0;
    const failing = app('ok', {
      command: [PYTHON, '-c', 'raise SystemExit(7)'],
      retries: 2,
      prepareInputs: async () => {
        calls++;
        throw new Error('volume x.nii.gz: no head found');
      },
    });
    await assert.rejects(failing.evaluate(weights, new AbortController().signal), (e: unknown) => {
      assert.ok(e instanceof AppFailed);
      assert.match(e.message, /could not run: volume x\.nii\.gz: no head found/);
      return true;
    });
    assert.equal(calls, 1);
  });
});
