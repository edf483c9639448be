/** The Python interpreter for the PyTorch engine's tests: $FEDGIT_PYTHON, else Debian's, else python3 on PATH. */
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
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
