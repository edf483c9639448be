/** The Python interpreter for the PyTorch engine's tests: $FEDGIT_PYTHON, else Debian's, else python3 on PATH. */
import fs from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

export const PYTHON = process.env.FEDGIT_PYTHON ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
export const TORCH_SCRIPT = fileURLToPath(new URL('../../../edge-app/python/aspects_torch.py', import.meta.url));

/** Fails (never skips) with what to install when torch, numpy or nibabel is missing. */
export function requireTorch(what: string): void {
  try {
    execFileSync(PYTHON, ['-c', 'import torch, numpy, nibabel'], { stdio: 'pipe' });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n').at(-1);
    throw new Error(`${what} need ${PYTHON} with torch, numpy and nibabel (${stderr}). Install python3-torch python3-nibabel (Debian) or set FEDGIT_PYTHON to an interpreter that has them.`);
  }
}

/** Runs one action of the PyTorch reference script (2 threads), failing with its stderr. */
export async function runTorchAction(action: string, env: Record<string, string>): Promise<void> {
  try {
    await promisify(execFile)(PYTHON, [TORCH_SCRIPT, action], { env: { ...process.env, FEDGIT_THREADS: '2', ...env }, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    throw new Error(`aspects_torch.py ${action} failed: ${String((e as { stderr?: string }).stderr ?? e)}`);
  }
}
