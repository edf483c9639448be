/**
 * FedProx through the external-command contract (edge-app/command/CONTRACT.md, "FedProx"): a
 * tiny shell command checks the μ it receives in FEDGIT_PROXIMAL_MU and confirms it (or not) in
 * its metrics. A command that does not confirm a μ > 0 is refused with ConfigInvalid (fatal, not
 * retried): it would otherwise silently train FedAvg's local step.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCommandApp } from '../edge-app/command/command-app.js';
import type { Tensors, TrainRequest } from '../operator/contracts.js';
import { ConfigInvalid } from '../operator/errors.js';

/** Exits 3 unless FEDGIT_PROXIMAL_MU is $EXPECT_MU; echoes $ACK_MU as "proximalMu" when set; counts its runs. */
const SCRIPT = `#!/bin/sh
set -eu
echo run >> "$CALLS"
if [ "\${FEDGIT_PROXIMAL_MU-unset}" != "$EXPECT_MU" ]; then
  echo "FEDGIT_PROXIMAL_MU is '\${FEDGIT_PROXIMAL_MU-unset}', expected '$EXPECT_MU'" >&2
  exit 3
fi
cp "$FEDGIT_INPUT_WEIGHTS" "$FEDGIT_OUTPUT_WEIGHTS"
if [ -n "\${ACK_MU-}" ]; then
  printf '{"datasetSize": 5, "local": {"loss": 0.5}, "proximalMu": %s}' "$ACK_MU" > "$FEDGIT_METRICS"
else
  printf '{"datasetSize": 5, "local": {"loss": 0.5}}' > "$FEDGIT_METRICS"
fi
`;

let root: string;
let script: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fedgit-fedprox-command-'));
  script = path.join(root, 'model.sh');
  fs.writeFileSync(script, SCRIPT, { mode: 0o755 });
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const weights: Tensors = new Map([['a', { shape: [2], data: Float32Array.of(1, 2) }]]);
const request = (proximalMu?: number): TrainRequest => ({
  weights, epochs: 1, round: 2, planId: 'plan-x', seed: 1, signal: new AbortController().signal, ...(proximalMu !== undefined ? { proximalMu } : {}),
});

let calls = 0;
function app(env: Record<string, string>) {
  const callsFile = path.join(root, `calls-${++calls}`);
  const command = createCommandApp({ command: ['/bin/sh', script], dataDir: root, architecture: 'fake/v1', retries: 1, tmpDir: root, env: { CALLS: callsFile, ...env } });
  return { command, runs: () => fs.readFileSync(callsFile, 'utf8').trim().split('\n').length };
}

describe('FedProx in the external-command contract', () => {
  it('μ > 0 reaches the command as FEDGIT_PROXIMAL_MU; its confirmation is recorded in the local metrics', async () => {
    const { command } = app({ EXPECT_MU: '0.1', ACK_MU: '0.1' });
    assert.equal(command.appliesProximalTerm, true);
    const result = await command.train(request(0.1));
    assert.deepEqual(result.metrics.local, { loss: 0.5, proximalMu: 0.1 });
  });

  it('without μ the command gets FEDGIT_PROXIMAL_MU=0, needs no confirmation, and an inherited or configured value never leaks through', async () => {
    process.env.FEDGIT_PROXIMAL_MU = '7';
    try {
      const { command } = app({ EXPECT_MU: '0', FEDGIT_PROXIMAL_MU: '5' });
      const result = await command.train(request());
      assert.deepEqual(result.metrics.local, { loss: 0.5 });
    } finally {
      delete process.env.FEDGIT_PROXIMAL_MU;
    }
  });

  it('a command that ignores μ > 0 (no "proximalMu" in its metrics) is refused with ConfigInvalid after one run, not retried', async () => {
    const { command, runs } = app({ EXPECT_MU: '0.1' });
    await assert.rejects(command.train(request(0.1)), (e: unknown) => {
      assert.ok(e instanceof ConfigInvalid, String(e));
      assert.equal(e.fatal, true);
      assert.match(e.message, /did not apply the FedProx proximal term: it was given FEDGIT_PROXIMAL_MU=0\.1 but its metrics file has no "proximalMu"; a command that does not implement FedProx \(CONTRACT\.md, "FedProx"\) cannot train this plan$/);
      return true;
    });
    assert.equal(runs(), 1);
  });

  it('a command that confirms another μ is refused; a non-numeric "proximalMu" is an invalid output', async () => {
    await assert.rejects(app({ EXPECT_MU: '0.1', ACK_MU: '0.01' }).command.train(request(0.1)), (e: unknown) => e instanceof ConfigInvalid && /its metrics file says "proximalMu": 0\.01/.test(e.message));
    await assert.rejects(app({ EXPECT_MU: '0.1', ACK_MU: '"x"' }).command.train(request(0.1)), /proximalMu must be a finite number ≥ 0, got "x"/);
  });
});
