/**
 * `fedgit experiment` and `fedgit synth`, dispatched here by operator/cli.ts.
 * Returns the exit code; user errors are thrown as FedgitError (code USAGE → exit 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import path from 'node:path';
import { synthFolder } from './cohort.js';
import { ExperimentUsage } from './errors.js';
import { PACKAGE_ROOT, type EngineChoice } from './federated.js';
import { runExperiment } from './experiment.js';

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
edge), and compares both final models on the test set.

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

const SYNTH_USAGE = `usage: fedgit synth --out DIR --count N [--seed S] [--matrix 512]

Writes N synthetic non-contrast head CTs (NIfTI-1, .nii.gz, int16) and
DIR/labels.csv (file, hemisphere, one 0/1 column per ASPECTS region).
The same seed gives the same bytes.
`;

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
  help: { type: 'boolean', short: 'h' },
} as const;

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
  const matrix = integer('matrix', values.matrix, { min: 32, max: 1024 }) ?? 512;
  const dir = path.resolve(values.out);
  const started = Date.now();
  await synthFolder({ name: path.basename(dir), dir, count, seed, matrix }, (line) => console.log(line));
  console.log(`[synth] wrote ${count} volumes and ${path.join(dir, 'labels.csv')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
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

async function experimentCommand(args: string[]): Promise<number> {
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
    parallel: !(v.sequential ?? false),
    python: v.python ?? EXPERIMENT_DEFAULTS.python,
    timeoutSeconds: integer('timeout', v.timeout, { min: 1 }) ?? EXPERIMENT_DEFAULTS.timeoutSeconds,
  };
  if (path.resolve(settings.data) === path.resolve(settings.work)) throw new ExperimentUsage('--data and --work must be different folders');
  await runExperiment(settings);
  return 0;
}

export async function runExperimentCommand(command: 'experiment' | 'synth', args: string[]): Promise<number> {
  switch (command) {
    case 'synth':
      return synthCommand(args);
    case 'experiment':
      return experimentCommand(args);
    default: {
      const never: never = command;
      throw new ExperimentUsage(`unknown command ${String(never)}`);
    }
  }
}
