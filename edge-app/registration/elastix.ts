import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Aborted, AppFailed, DataInvalid } from '../../sdk/index.js';
import type { VoxelGrid } from '../atlas/mni-grid.js';
import { renderMetaImageHeader } from './metaimage.js';

export type ElastixImage = VoxelGrid & { readonly values: Float32Array };
export type ElastixMask = VoxelGrid & { readonly values: Uint8Array };

export type ElastixRun = {
  /** The scan being registered; named in every error. */
  file: string;
  fixed: ElastixImage;
  moving: ElastixImage;
  fixedMask?: ElastixMask;
  movingMask?: ElastixMask;
  parameters: string;
  /** Path of the elastix executable (default `elastix` on PATH). */
  executable?: string;
  threads?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
};

export type ElastixResult = { transformParameters: string; log: string; seconds: number };

/** elastix's own words for "the images do not overlap": the scan, not the program, is at fault. */
const NO_OVERLAP = /Too many samples map outside moving image buffer|All samples map outside/;

/** Runs elastix once in a temporary folder that is removed afterwards. */
export async function runElastix(run: ElastixRun): Promise<ElastixResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fedgit-elastix-'));
  try {
    const args = ['-f', await writeImage(dir, 'fixed', run.fixed), '-m', await writeImage(dir, 'moving', run.moving), '-out', dir, '-p', path.join(dir, 'parameters.txt')];
    await writeFile(path.join(dir, 'parameters.txt'), run.parameters);
    if (run.fixedMask) args.push('-fMask', await writeImage(dir, 'fixed-mask', run.fixedMask));
    if (run.movingMask) args.push('-mMask', await writeImage(dir, 'moving-mask', run.movingMask));
    args.push('-threads', String(run.threads ?? 2));
    const started = performance.now();
    const failure = await execute(run.executable ?? 'elastix', args, run);
    const seconds = (performance.now() - started) / 1000;
    const log = await readFile(path.join(dir, 'elastix.log'), 'utf8').catch(() => '');
    if (failure) throw explain(run, failure, log);
    const transformParameters = await readFile(path.join(dir, 'TransformParameters.0.txt'), 'utf8').catch(() => {
      throw new AppFailed(`${run.file}: elastix finished without writing TransformParameters.0.txt`, { file: run.file });
    });
    return { transformParameters, log, seconds };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type ExecFailure = Error & { code?: string | number; killed?: boolean; signal?: string };

function execute(executable: string, args: string[], run: ElastixRun): Promise<ExecFailure | undefined> {
  return new Promise((resolve) => {
    execFile(executable, args, { timeout: run.timeoutMs ?? 300_000, signal: run.signal, maxBuffer: 64 << 20 },
      (error) => resolve((error as ExecFailure | null) ?? undefined));
  });
}

function explain(run: ElastixRun, failure: ExecFailure, log: string): Error {
  const file = run.file;
  if (run.signal?.aborted || failure.name === 'AbortError') return new Aborted(`${file}: registration aborted`);
  if (failure.code === 'ENOENT') {
    return new AppFailed(`${file}: cannot register, elastix is not installed (apt-get install elastix)`, { file, reason: 'elastix-missing' }, { cause: failure });
  }
  if (failure.killed) {
    return new AppFailed(`${file}: elastix did not finish within ${((run.timeoutMs ?? 300_000) / 1000).toFixed(0)} s`, { file, reason: 'elastix-timeout' }, { cause: failure });
  }
  const error = lastError(log);
  if (NO_OVERLAP.test(log)) {
    return new DataInvalid(`${file}: registration to the template failed, the head does not overlap the template (${error})`, { file, reason: 'registration-failed', elastix: error }, { cause: failure });
  }
  return new AppFailed(`${file}: elastix failed (exit ${failure.code ?? failure.signal}): ${error}`, { file, reason: 'elastix-failed', elastix: error }, { cause: failure });
}

/** The most telling line of an elastix log: its last line mentioning an error, else its last line. */
export function lastError(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean);
  const described = lines.filter((l) => /^Description:/i.test(l));
  const errors = lines.filter((l) => /error/i.test(l));
  return (described.at(-1) ?? errors.at(-1) ?? lines.at(-1) ?? 'no log').replace(/^Description:\s*/i, '').slice(0, 300);
}

async function writeImage(dir: string, name: string, image: ElastixImage | ElastixMask): Promise<string> {
  const raw = `${name}.raw`;
  const float = image.values instanceof Float32Array;
  await writeFile(path.join(dir, raw), new Uint8Array(image.values.buffer, image.values.byteOffset, image.values.byteLength));
  const header = path.join(dir, `${name}.mhd`);
  await writeFile(header, renderMetaImageHeader(image, raw, float ? 'MET_FLOAT' : 'MET_UCHAR'));
  return header;
}
