/**
 * The experiment's synthetic cohort: one folder per edge plus a test folder,
 * generated once and reused. A folder written by fedgit carries a small
 * manifest (settings); labels.csv is written last, so a folder with the
 * manifest and a complete labels.csv is complete. A folder without the
 * manifest is the user's own data: reused when complete, never overwritten.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { mkdir, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SYNTH_PROFILES, SYNTH_TRUTH_FILE, isNiftiFile, readLabelsCsv, synthCohort, type SynthProfile } from '../edge-app/cohort/index.js';
import { fnv1a32 } from '../edge-app/random.js';
import { ExperimentUsage } from './errors.js';
import type { SynthJob, SynthMessage } from './synth-worker.js';

export const SYNTH_MANIFEST = '.fedgit-synth.json';
const SYNTH_FILE = /^synth-\d{4,}\.nii\.gz$/;

/** What a folder is generated from; the profile is stored whole, so a changed profile regenerates. */
export type SynthSettings = { readonly count: number; readonly seed: number; readonly matrix: number; readonly profile: SynthProfile };
export type CohortPart = SynthSettings & { readonly name: string; readonly dir: string };

type Manifest = Omit<SynthSettings, 'profile'> & { readonly generator: 'fedgit synth'; readonly version?: number; readonly profile?: SynthProfile };

/** The seed of one folder: different per folder, fixed by the data seed. */
export const partSeed = (dataSeed: number, name: string): number => fnv1a32(`${dataSeed >>> 0}/${name}`);

/**
 * The sites of the default job: the plan's edges take hospital A's and B's scanners in turn (first
 * edge A, second B, third A …), so the edges differ in scanner settings and case mix (non-IID);
 * the test set mixes both scanners.
 */
export const EDGE_PROFILES = ['hospital-a', 'hospital-b'] as const;
export const TEST_PROFILE = 'mixed';

export function experimentCohortParts(dataRoot: string, o: { edges: readonly string[]; perEdge: number; test: number; dataSeed: number; matrix: number }): CohortPart[] {
  const part = (name: string, count: number, profile: string): CohortPart =>
    ({ name, dir: path.join(dataRoot, name), count, seed: partSeed(o.dataSeed, name), matrix: o.matrix, profile: SYNTH_PROFILES[profile]! });
  return [...o.edges.map((e, n) => part(e, o.perEdge, EDGE_PROFILES[n % EDGE_PROFILES.length]!)), part('test', o.test, TEST_PROFILE)];
}

export type FolderState =
  | { readonly kind: 'complete'; readonly count: number; readonly ours: boolean; readonly settings?: SynthSettings }
  | { readonly kind: 'empty' }
  /** ours but unfinished, or complete with other settings (`unfinished` false): safe to regenerate */
  | { readonly kind: 'stale'; readonly reason: string; readonly unfinished: boolean }
  | { readonly kind: 'foreign'; readonly reason: string };

/**
 * Bump when synthCohort's output for given settings changes (2: the head's midline is at world
 * x = 0; 3: scanner space — pose, table offset, tilt, orientation, slice thickness, storage type,
 * partial lesions, bias — from a profile stored in the manifest).
 */
export const GENERATOR_VERSION = 3;

async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    const m = JSON.parse(await readFile(path.join(dir, SYNTH_MANIFEST), 'utf8')) as Partial<Manifest>;
    if (m.generator === 'fedgit synth' && Number.isInteger(m.count) && Number.isInteger(m.seed) && Number.isInteger(m.matrix)) return m as Manifest;
  } catch {
    // no manifest, or unreadable: treated as not ours
  }
  return undefined;
}

async function entries(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** What is in a cohort folder, compared with the settings wanted (if any). */
export async function inspectCohortFolder(dir: string, wanted?: SynthSettings): Promise<FolderState> {
  const names = await entries(dir);
  if (names === undefined || names.length === 0) return { kind: 'empty' };
  const manifest = await readManifest(dir);
  const volumes = new Set(names.filter(isNiftiFile));
  let problem: string | undefined;
  let count = 0;
  if (!names.includes('labels.csv')) {
    problem = 'no labels.csv';
  } else {
    try {
      const rows = await readLabelsCsv(path.join(dir, 'labels.csv'));
      count = rows.length;
      const missing = rows.filter((r) => !volumes.has(r.file));
      const labelled = new Set(rows.map((r) => r.file));
      const unlabelled = [...volumes].filter((v) => !labelled.has(v));
      if (missing.length > 0) problem = `${missing.length} volume(s) of labels.csv missing (first: ${missing[0]!.file})`;
      else if (unlabelled.length > 0) problem = `${unlabelled.length} volume(s) without a row in labels.csv`;
      else if (rows.length === 0) problem = 'labels.csv has no rows';
    } catch (e) {
      problem = `labels.csv unreadable: ${(e as Error).message}`;
    }
  }
  if (!manifest) {
    return problem ? { kind: 'foreign', reason: problem } : { kind: 'complete', count, ours: false };
  }
  if (problem) return { kind: 'stale', reason: `unfinished (${problem})`, unfinished: true };
  if (manifest.version !== GENERATOR_VERSION || manifest.profile === undefined) return { kind: 'stale', reason: `written by generator version ${manifest.version ?? 1}, this is version ${GENERATOR_VERSION}`, unfinished: false };
  const settings: SynthSettings = { count: manifest.count, seed: manifest.seed, matrix: manifest.matrix, profile: manifest.profile };
  if (count !== manifest.count) return { kind: 'stale', reason: `labels.csv has ${count} rows, manifest says ${manifest.count}`, unfinished: true };
  if (wanted && (wanted.count !== settings.count || wanted.seed !== settings.seed || wanted.matrix !== settings.matrix)) {
    return { kind: 'stale', reason: `written with count ${settings.count}, seed ${settings.seed}, matrix ${settings.matrix}; wanted count ${wanted.count}, seed ${wanted.seed}, matrix ${wanted.matrix}`, unfinished: false };
  }
  if (wanted && JSON.stringify(wanted.profile) !== JSON.stringify(settings.profile)) {
    return { kind: 'stale', reason: `written with profile ${settings.profile.name}${wanted.profile.name === settings.profile.name ? ' as it was then' : ''}; wanted ${wanted.profile.name}`, unfinished: false };
  }
  return { kind: 'complete', count, ours: true, settings };
}

/** Removes what an earlier synthesis wrote (its volumes, labels.csv, manifest), nothing else. */
async function clearOurs(dir: string): Promise<void> {
  for (const name of (await entries(dir)) ?? []) {
    if (SYNTH_FILE.test(name) || name === 'labels.csv' || name === SYNTH_MANIFEST || name === SYNTH_TRUTH_FILE) await rm(path.join(dir, name), { force: true });
  }
}

async function writeManifest(dir: string, s: SynthSettings): Promise<void> {
  await mkdir(dir, { recursive: true });
  const manifest: Manifest = { generator: 'fedgit synth', version: GENERATOR_VERSION, count: s.count, seed: s.seed, matrix: s.matrix, profile: s.profile };
  await writeFile(path.join(dir, SYNTH_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
}

export type Say = (line: string) => void;

/** A progress printer that reports about every tenth of `total`, and the last one. */
export function progressEvery(total: number, print: (done: number) => void): (done: number) => void {
  const step = Math.max(1, Math.ceil(total / 10));
  return (done) => {
    if (done === total || done % step === 0) print(done);
  };
}

/** Writes one cohort folder in this thread (used by `fedgit synth`). */
export async function synthFolder(part: CohortPart, say: Say): Promise<void> {
  await prepareFolder(part, { overwrite: true });
  const report = progressEvery(part.count, (done) => say(`[synth] ${part.name}: ${done}/${part.count} volumes`));
  await synthCohort({ outDir: part.dir, count: part.count, seed: part.seed, matrix: part.matrix, profile: part.profile, onProgress: (done) => report(done) });
}

async function prepareFolder(part: CohortPart, o: { overwrite: boolean }): Promise<void> {
  const state = await inspectCohortFolder(part.dir, part);
  if (state.kind === 'foreign' || (state.kind === 'complete' && !state.ours)) {
    if (!o.overwrite || state.kind === 'foreign') {
      throw new ExperimentUsage(`${part.dir} holds files that fedgit did not write${state.kind === 'foreign' ? ` (${state.reason})` : ''}; remove it or choose another folder`);
    }
  }
  await clearOurs(part.dir);
  await writeManifest(part.dir, part);
}

function synthInWorker(part: CohortPart, onProgress: (m: SynthMessage) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const job: SynthJob = { outDir: part.dir, count: part.count, seed: part.seed, matrix: part.matrix, profile: part.profile };
    const worker = new Worker(new URL('./synth-worker.js', import.meta.url), { workerData: job });
    worker.on('message', (m: SynthMessage) => onProgress(m));
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`synthesis of ${part.dir} stopped with exit code ${code}`))));
  });
}

export type EnsureResult = { readonly generated: string[]; readonly reused: string[]; readonly seconds: number };

/**
 * Makes sure every part exists and is complete: complete folders are reused
 * (ours with other settings are regenerated, unless `keepWritten`: a cohort the
 * user wrote with `fedgit synth` and named is theirs to keep), missing ones are
 * generated in worker threads, `concurrency` at a time (default: the cores, at most 3).
 */
export async function ensureCohort(parts: readonly CohortPart[], o: { say: Say; concurrency?: number; keepWritten?: boolean }): Promise<EnsureResult> {
  const started = Date.now();
  const todo: CohortPart[] = [];
  const reused: string[] = [];
  for (const part of parts) {
    const state = await inspectCohortFolder(part.dir, part);
    switch (state.kind) {
      case 'complete':
        o.say(`[synth] ${part.name}: reusing ${state.count} volumes in ${part.dir}${state.ours ? '' : ' (not written by fedgit)'}`);
        reused.push(part.name);
        break;
      case 'foreign':
        throw new ExperimentUsage(`${part.dir} is not a complete cohort (${state.reason}) and was not written by fedgit; fix or remove it, or choose another --data`);
      case 'stale':
        if (o.keepWritten && !state.unfinished) {
          o.say(`[synth] ${part.name}: reusing ${part.dir} as written (${state.reason}; the generation flags apply only to a missing folder)`);
          reused.push(part.name);
          break;
        }
        o.say(`[synth] ${part.name}: regenerating ${part.dir}: ${state.reason}`);
        todo.push(part);
        break;
      case 'empty':
        todo.push(part);
        break;
      default: {
        const never: never = state;
        throw new Error(`unknown folder state ${JSON.stringify(never)}`);
      }
    }
  }
  if (todo.length > 0) {
    const total = todo.reduce((a, p) => a + p.count, 0);
    o.say(`[synth] generating ${total} volumes (matrix ${todo[0]!.matrix}) in ${todo.map((p) => `${p.name} (${p.count}, profile ${p.profile.name})`).join(', ')}`);
    for (const part of todo) await prepareFolder(part, { overwrite: false });
    const concurrency = Math.max(1, Math.min(o.concurrency ?? Math.min(3, availableParallelism()), todo.length));
    let next = 0;
    let doneAll = 0;
    const reportAll = progressEvery(total, (done) => o.say(`[synth] ${done}/${total} volumes (${((Date.now() - started) / 1000).toFixed(0)} s)`));
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const part = todo[next++]!;
        await synthInWorker(part, () => reportAll(++doneAll));
        const written = await inspectCohortFolder(part.dir, part);
        if (written.kind !== 'complete') throw new Error(`synthesis of ${part.dir} finished but the folder is not complete`);
        o.say(`[synth] ${part.name}: ${part.count} volumes written to ${part.dir}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (Date.now() - started) / 1000;
    o.say(`[synth] ${total} volumes in ${seconds.toFixed(1)} s: ${((1000 * seconds * concurrency) / total).toFixed(0)} ms per volume per worker (${concurrency} workers)`);
  }
  return { generated: todo.map((p) => p.name), reused, seconds: (Date.now() - started) / 1000 };
}

/** True when `dir` exists (file or folder). */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
