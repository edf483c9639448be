/**
 * `fedgit experiment`, `fedgit synth` and `fedgit evaluate`, dispatched here by
 * the composition root (bin/fedgit.ts), which hands in the registries and its
 * own path. Returns the exit code; user errors are thrown as ExperimentUsage (exit 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import path from 'node:path';
import { DEFAULT_SYNTH_PROFILE, SYNTH_PROFILES, describeProfile, profileProblem, withOverrides, type Range, type SynthOverrides, type SynthStorage } from '../edge-app/cohort/index.js';
import { EDGE_PROFILES, TEST_PROFILE, synthFolder } from './cohort.js';
import { ExperimentUsage } from './errors.js';
import { PACKAGE_ROOT, type EngineChoice } from './federated.js';
import { runExperiment } from './experiment.js';
import type { Registries } from '../operator/runtime/registries.js';

/** What the composition root gives the experiment commands. */
export type ExperimentDeps = { readonly registries: Registries; /** the fedgit entry point, run as a child process */ readonly cli: string };

/** Defaults of the experiment (the plan template holds grid, learning rate, rounds and epochs). */
export const EXPERIMENT_DEFAULTS = {
  data: 'data/aspects',
  work: 'results/experiment',
  plan: path.join(PACKAGE_ROOT, 'config', 'aspects.yaml'),
  perEdge: 85,
  test: 90,
  matrix: 256,
  dataSeed: 2024,
  python: 'python3',
  timeoutSeconds: 3600,
} as const;

const EXPERIMENT_USAGE = `usage: fedgit experiment [options]

Generates a synthetic NCCT cohort if missing (two hospitals + a test set),
trains the ASPECTS model centrally and federated (fedgit run, one process per
edge), and compares both final models on the test set. A cohort folder
written by \`fedgit synth\` with other settings is regenerated, except under a
--data you name without a generation flag (--per-edge, --test, --matrix,
--data-seed): that one is used as written. Folders of your own (no
.fedgit-synth.json) are never overwritten.

  --data DIR               cohort root: DIR/<edge>/ and DIR/test/     (${EXPERIMENT_DEFAULTS.data})
  --work DIR               plan, repositories, logs, results, report (${EXPERIMENT_DEFAULTS.work})
  --plan FILE              plan template (app aspects-cnn)           (config/aspects.yaml)
  --rounds R               federation rounds (overrides the template)
  --epochs-per-round E     local epochs per round; central trains R × E epochs
  --seed S                 plan seed: round-0 weights and shuffling
  --engine EDGE=tfjs|torch engine of an edge (repeatable; default tfjs)
  --python PATH            interpreter for torch edges               (${EXPERIMENT_DEFAULTS.python})
  --per-edge N             volumes per edge when generating          (${EXPERIMENT_DEFAULTS.perEdge})
  --test N                 test volumes when generating              (${EXPERIMENT_DEFAULTS.test})
  --matrix M               in-plane matrix when generating           (${EXPERIMENT_DEFAULTS.matrix})
  --data-seed S            seed of the generated cohort              (${EXPERIMENT_DEFAULTS.dataSeed})
  --sequential             train central first, then the federation (default: at the same time,
                           since central is one single-threaded process and the federation two)
  --timeout SECONDS        give up on the federation after this long (${EXPERIMENT_DEFAULTS.timeoutSeconds})
`;

const SYNTH_USAGE = `usage: fedgit synth --out DIR --count N [--seed S] [--matrix 256] [--profile NAME] [settings]

Writes N synthetic non-contrast head CTs (NIfTI-1, .nii.gz) as scanners store
them, DIR/labels.csv (file, hemisphere, one 0/1 column per ASPECTS region),
DIR/.fedgit-synth.json (generator version, seed, the whole profile) and
DIR/.fedgit-synth-truth.json (per volume: scanner, pose, MNI → world matrix,
lesions). The same seed and settings give the same bytes.

Each volume: the head shifted and rotated in scanner space, at a table offset
in z; axial slices with the site's thickness and gantry tilt (a sheared
affine, as stored without tilt correction); stored in an axis order such as
RAS, LPS or LAS and as int16 HU, uint16 with scl_inter −1024, or float32 HU;
lesions 2–8 HU with blurred borders, often covering part of a region; scanner
noise and a weak smooth bias field.

  --profile NAME     ${Object.keys(SYNTH_PROFILES).join(' | ')}          (${DEFAULT_SYNTH_PROFILE})
                     the default job uses ${EDGE_PROFILES.join(' and ')} for its edges, ${TEST_PROFILE} for test/
  --matrix M         in-plane matrix; the field of view stays 230–270 mm (256)

Settings (each overrides the profile, for every scanner in it; ranges LO:HI,
write a negative one as --table-z=-1300:-1100):
  --slice-mm LIST    slice thickness choices, mm, e.g. 1,2.5,5
  --noise LO:HI      noise σ, HU
  --bias LO:HI       bias-field amplitude, HU
  --tilt LO:HI       gantry tilt, degrees
  --storage LIST     among int16, uint16, float32
  --orientation LIST axis orders, e.g. RAS,LPS,LAS (two of R/L A/P in-plane, then S or I)
  --lesion-rate P    probability that a volume shows ischaemic change
  --region-rate P    probability of each region in a lesioned hemisphere
  --lesion-hu LO:HI  HU drop of ischaemic tissue
  --shift MM         head shift in x and y up to ± MM
  --rotation DEG     head rotation about each axis up to ± DEG
  --table-z LO:HI    world z of the head centre (table offset), mm

Profiles:
${Object.values(SYNTH_PROFILES).map((p) => `  ${describeProfile(p)}`).join('\n')}

An independent cohort, with settings the default job does not use:
  fedgit synth --profile independent --seed 777 --count 90 --out data/independent
`;

const EVALUATE_USAGE = `usage: fedgit evaluate --weights <file|commit|tag> --data DIR [--repos DIR | --config FILE] [--plan FILE] [--out DIR]

Evaluates weights on a labelled folder (NIfTI files or DICOM series folders
and labels.csv) and prints the experiment's report: per class precision,
recall and F1; per region sensitivity, specificity and AUC; ASPECTS agreement
(mean difference, % within ±1, ASPECTS ≥ 6 vs < 6).

  --weights W    a safetensors file, or a commit, tag or branch of the global
                 repository (e.g. inference-aspects-1a2b3c4d); repeatable, one column each
  --data DIR     the labelled folder
  --repos DIR    where the repositories are (repos)
  --config FILE  a participant config saying where they are (a git server)
  --plan FILE    the plan whose app options the weights were trained with; default: the
                 plan the weights name, else the app defaults for their architecture
  --out DIR      also write DIR/evaluation.md and DIR/evaluation.json
`;

const EVALUATE_OPTIONS = {
  weights: { type: 'string', multiple: true },
  data: { type: 'string' },
  repos: { type: 'string' },
  config: { type: 'string' },
  plan: { type: 'string' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function evaluateCommand(args: string[], registries: Registries): Promise<number> {
  const { values: v, positionals } = parse('evaluate', args, EVALUATE_OPTIONS);
  if (v.help) {
    process.stdout.write(EVALUATE_USAGE);
    return 0;
  }
  noPositionals('evaluate', positionals);
  if (!v.weights?.length) throw new ExperimentUsage('evaluate: which weights? give --weights FILE|COMMIT|TAG (see fedgit evaluate --help)');
  if (!v.data) throw new ExperimentUsage('evaluate: on what? give --data DIR, a folder with labels.csv (see fedgit evaluate --help)');
  if (v.repos && v.config) throw new ExperimentUsage('evaluate: give --repos or --config, not both');
  const { runEvaluate } = await import('./evaluate.js');
  await runEvaluate({
    weights: v.weights, data: v.data,
    ...(v.repos ? { repos: v.repos } : {}), ...(v.config ? { config: v.config } : {}), ...(v.plan ? { plan: v.plan } : {}), ...(v.out ? { out: v.out } : {}),
  }, registries);
  return 0;
}

function integer(flag: string, value: string | undefined, o: { min: number; max?: number }): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const max = o.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < o.min || n > max) {
    throw new ExperimentUsage(`--${flag} takes an integer ${o.max !== undefined ? `from ${o.min} to ${o.max}` : `≥ ${o.min}`}, got '${value}'`);
  }
  return n;
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (e) {
    const message = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '').split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
    throw new ExperimentUsage(`${command}: ${message} (see fedgit ${command} --help)`);
  }
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length > 0) throw new ExperimentUsage(`${command}: unexpected argument '${positionals[0]}' (see fedgit ${command} --help)`);
}

const SYNTH_OPTIONS = {
  out: { type: 'string' },
  count: { type: 'string' },
  seed: { type: 'string' },
  matrix: { type: 'string' },
  profile: { type: 'string' },
  'slice-mm': { type: 'string' },
  noise: { type: 'string' },
  bias: { type: 'string' },
  tilt: { type: 'string' },
  storage: { type: 'string' },
  orientation: { type: 'string' },
  'lesion-rate': { type: 'string' },
  'region-rate': { type: 'string' },
  'lesion-hu': { type: 'string' },
  shift: { type: 'string' },
  rotation: { type: 'string' },
  'table-z': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function decimal(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new ExperimentUsage(`--${flag} takes a number, got '${value}'`);
  return n;
}

function range(flag: string, value: string | undefined): Range | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(-?[\d.]+)\s*(?::\s*(-?[\d.]+)\s*)?$/.exec(value);
  const lo = Number(m?.[1]), hi = Number(m?.[2] ?? m?.[1]);
  if (!m || !Number.isFinite(lo) || !Number.isFinite(hi) || lo > hi) throw new ExperimentUsage(`--${flag} takes a range LO:HI (LO ≤ HI) or one number, got '${value}'`);
  return [lo, hi];
}

const list = (value: string | undefined): string[] | undefined => (value === undefined ? undefined : value.split(',').map((v) => v.trim()).filter(Boolean));

/** The profile named by --profile with the settings flags applied, checked. */
function synthProfileOf(v: Record<string, string | boolean | undefined>) {
  const name = (v.profile as string | undefined) ?? DEFAULT_SYNTH_PROFILE;
  const profile = SYNTH_PROFILES[name];
  if (!profile) throw new ExperimentUsage(`synth: unknown profile '${name}' (known: ${Object.keys(SYNTH_PROFILES).join(', ')})`);
  const s = (k: string) => v[k] as string | undefined;
  const sliceMm = list(s('slice-mm'))?.map((x) => decimal('slice-mm', x)!);
  const overrides: SynthOverrides = {
    ...(sliceMm ? { sliceMm } : {}),
    ...(s('noise') !== undefined ? { noiseHu: range('noise', s('noise'))! } : {}),
    ...(s('bias') !== undefined ? { biasHu: range('bias', s('bias'))! } : {}),
    ...(s('tilt') !== undefined ? { tiltDeg: range('tilt', s('tilt'))! } : {}),
    ...(s('storage') !== undefined ? { storage: list(s('storage')) as SynthStorage[] } : {}),
    ...(s('orientation') !== undefined ? { orientation: list(s('orientation'))!.map((o) => o.toUpperCase()) } : {}),
    ...(s('lesion-rate') !== undefined ? { lesionRate: decimal('lesion-rate', s('lesion-rate'))! } : {}),
    ...(s('region-rate') !== undefined ? { regionRate: decimal('region-rate', s('region-rate'))! } : {}),
    ...(s('lesion-hu') !== undefined ? { dropHu: range('lesion-hu', s('lesion-hu'))! } : {}),
    ...(s('shift') !== undefined ? { shiftMm: decimal('shift', s('shift'))! } : {}),
    ...(s('rotation') !== undefined ? { rotationDeg: decimal('rotation', s('rotation'))! } : {}),
    ...(s('table-z') !== undefined ? { tableZMm: range('table-z', s('table-z'))! } : {}),
  };
  const result = withOverrides(profile, overrides);
  const problem = profileProblem(result);
  if (problem) throw new ExperimentUsage(`synth: ${problem}`);
  return result;
}

const EXPERIMENT_OPTIONS = {
  data: { type: 'string' },
  work: { type: 'string' },
  plan: { type: 'string' },
  rounds: { type: 'string' },
  'epochs-per-round': { type: 'string' },
  seed: { type: 'string' },
  engine: { type: 'string', multiple: true },
  python: { type: 'string' },
  'per-edge': { type: 'string' },
  test: { type: 'string' },
  matrix: { type: 'string' },
  'data-seed': { type: 'string' },
  sequential: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function synthCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse('synth', args, SYNTH_OPTIONS);
  if (values.help) {
    process.stdout.write(SYNTH_USAGE);
    return 0;
  }
  noPositionals('synth', positionals);
  if (!values.out) throw new ExperimentUsage('synth: where? give --out DIR (see fedgit synth --help)');
  if (values.count === undefined) throw new ExperimentUsage('synth: how many? give --count N (see fedgit synth --help)');
  const count = integer('count', values.count, { min: 1, max: 100_000 })!;
  const seed = integer('seed', values.seed, { min: 0, max: 2 ** 32 - 1 }) ?? 0;
  const matrix = integer('matrix', values.matrix, { min: 32, max: 1024 }) ?? 256;
  const profile = synthProfileOf(values);
  const dir = path.resolve(values.out);
  const started = Date.now();
  console.log(`[synth] profile ${describeProfile(profile)}`);
  await synthFolder({ name: path.basename(dir), dir, count, seed, matrix, profile }, (line) => console.log(line));
  const seconds = (Date.now() - started) / 1000;
  console.log(`[synth] wrote ${count} volumes and ${path.join(dir, 'labels.csv')} in ${seconds.toFixed(1)} s (${((1000 * seconds) / count).toFixed(0)} ms per volume)`);
  return 0;
}

function parseEngines(pairs: readonly string[]): Record<string, EngineChoice> {
  const out: Record<string, EngineChoice> = {};
  for (const pair of pairs) {
    const m = /^([^=]+)=(tfjs|torch)$/.exec(pair);
    if (!m) throw new ExperimentUsage(`--engine takes EDGE=tfjs or EDGE=torch, got '${pair}'`);
    if (out[m[1]!] !== undefined) throw new ExperimentUsage(`--engine names ${m[1]} twice`);
    out[m[1]!] = m[2] as EngineChoice;
  }
  return out;
}

async function experimentCommand(args: string[], cli: string): Promise<number> {
  const { values: v, positionals } = parse('experiment', args, EXPERIMENT_OPTIONS);
  if (v.help) {
    process.stdout.write(EXPERIMENT_USAGE);
    return 0;
  }
  noPositionals('experiment', positionals);
  const rounds = integer('rounds', v.rounds, { min: 1, max: 10_000 });
  const epochsPerRound = integer('epochs-per-round', v['epochs-per-round'], { min: 1, max: 1_000 });
  const seed = integer('seed', v.seed, { min: 0, max: 2 ** 32 - 1 });
  const settings = {
    data: v.data ?? EXPERIMENT_DEFAULTS.data,
    work: v.work ?? EXPERIMENT_DEFAULTS.work,
    planTemplate: v.plan ?? EXPERIMENT_DEFAULTS.plan,
    ...(rounds !== undefined ? { rounds } : {}),
    ...(epochsPerRound !== undefined ? { epochsPerRound } : {}),
    ...(seed !== undefined ? { seed } : {}),
    engines: parseEngines(v.engine ?? []),
    perEdge: integer('per-edge', v['per-edge'], { min: 2, max: 100_000 }) ?? EXPERIMENT_DEFAULTS.perEdge,
    testCount: integer('test', v.test, { min: 1, max: 100_000 }) ?? EXPERIMENT_DEFAULTS.test,
    matrix: integer('matrix', v.matrix, { min: 32, max: 1024 }) ?? EXPERIMENT_DEFAULTS.matrix,
    dataSeed: integer('data-seed', v['data-seed'], { min: 0, max: 2 ** 32 - 1 }) ?? EXPERIMENT_DEFAULTS.dataSeed,
    // A cohort the user named is kept as written unless they also ask for other generation settings.
    keepCohort: v.data !== undefined && [v['per-edge'], v.test, v.matrix, v['data-seed']].every((flag) => flag === undefined),
    parallel: !(v.sequential ?? false),
    python: v.python ?? EXPERIMENT_DEFAULTS.python,
    timeoutSeconds: integer('timeout', v.timeout, { min: 1 }) ?? EXPERIMENT_DEFAULTS.timeoutSeconds,
    cli,
  };
  if (path.resolve(settings.data) === path.resolve(settings.work)) throw new ExperimentUsage('--data and --work must be different folders');
  await runExperiment(settings);
  return 0;
}

export async function runExperimentCommand(command: 'experiment' | 'synth' | 'evaluate', args: string[], deps: ExperimentDeps): Promise<number> {
  switch (command) {
    case 'evaluate':
      return evaluateCommand(args, deps.registries);
    case 'synth':
      return synthCommand(args);
    case 'experiment':
      return experimentCommand(args, deps.cli);
    default: {
      const never: never = command;
      throw new ExperimentUsage(`unknown command ${String(never)}`);
    }
  }
}
