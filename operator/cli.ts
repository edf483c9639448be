/**
 * The `fedgit` command line of the operator. The entry point is the
 * composition root, bin/fedgit.ts, which hands in the app and strategy
 * registries and any commands that live above the operator (the experiment).
 * Commands throw; `runCli` has the only catch: it prints one clear line
 * (details go to the log) and picks the exit code.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { EXIT, FedgitError, UsageError } from './errors.js';
import type { Registries } from './runtime/registries.js';
import { readParticipantConfig, resolveParticipant, ParticipantSchema } from './config/participant.js';
import { runParticipantProcess } from './runtime/participant.js';
import { runFederation } from './commands/run.js';
import { whereFrom, loadPlan, openForReading } from './commands/locate.js';
import { readRounds, renderRounds } from './commands/log.js';
import { auditCommit, renderAudit } from './commands/audit.js';
import { noiseAuditOptions } from './commands/noise-seed-flags.js';
import { renderStatus } from './commands/status.js';
import { parseKeepRounds, pruneLfsObjects, renderPrune } from './commands/prune.js';
import { readFinalTag } from './store/federation.js';
import type { SetupPlan } from './commands/setup.js';

const USAGE = `usage: fedgit <command> [options]

  run <plan.yaml>         run a whole federation on this machine (repositories under --repos)
      [--repos repos] [--logs logs] [--results results] [--data-root DIR] [--new]
      [--edge-config EDGE=participant.yaml ...] [--aggregator-config participant.yaml] [--timeout SECONDS]
  aggregator              run the aggregator: --config participant.yaml, or --repos DIR [--logs DIR]
  edge                    run one edge: --config participant.yaml, or --name NAME --repos DIR [--data DIR] [--logs DIR]
      [--exit-when-done]  (aggregator and edge) exit 0 once the plan is complete
  log [--plan ID]         the rounds of a plan as a table          [--repos repos | --config FILE]
  audit <commit>          recompute a merge and compare bit for bit [--repos repos | --config FILE]
      [--noise-seed-file FILE | --noise-secret FILE]   a DP merge's noise: one round's seed (hex), or the aggregator's secret
  noise-seed --round N --out FILE   (the aggregator's operator) write one merged round's DP noise seed (0600) for an auditor
      [--noise-secret FILE] [--plan ID]   the secret: this file, else the aggregator config's noiseSecret, else its default  [--repos repos | --config FILE]
  status                  where every participant stands           [--repos repos | --config FILE]
  prune --keep-rounds K   (a plan with lfs:) remove from this machine's LFS stores the objects only rounds older than the newest K (≥ 2) need;
      [--plan ID] [--dry-run]   commits, trailers and pointers stay                       [--repos repos | --config FILE]
  report [--plan ID] [--out report.html] [--experiment comparison.json]   one self-contained HTML page of the plan, from git [--repos repos | --config FILE]
  serve [--port 8470] [--host 127.0.0.1] [--plan ID]   the same page, live (read-only)    [--repos repos | --config FILE]
  setup <plan.yaml> --base-url URL [--owner fedgit]   what the plan needs on a git server (repositories, users, permissions, webhooks)
      [--apply --admin-token-env VAR [--webhook PARTICIPANT=URL ...] [--webhook-secret-env VAR]]   create it on Gitea
  keygen --out FILE [--agreement-out FILE2] [--name NAME]
                                   write an Ed25519 signing key (and an X25519 agreement key for secure aggregation), mode 0600; prints the public keys for the plan
`;

/** A command that lives above the operator (e.g. `fedgit experiment`), injected by the composition root. */
export type ExtraCommand = {
  readonly name: string;
  /** Its line(s) in the usage text. */
  readonly usage: string;
  run(args: string[]): Promise<number>;
};

export type CliDeps = {
  readonly registries: Registries;
  /** The fedgit entry point, which `fedgit run` starts once per participant. */
  readonly cli: string;
  readonly commands?: readonly ExtraCommand[];
};

const usage = (deps: CliDeps) => USAGE + (deps.commands ?? []).map((c) => c.usage).join('');

const OPTIONS = {
  config: { type: 'string' },
  repos: { type: 'string' },
  logs: { type: 'string' },
  results: { type: 'string' },
  data: { type: 'string' },
  'data-root': { type: 'string' },
  name: { type: 'string' },
  plan: { type: 'string' },
  new: { type: 'boolean' },
  'edge-config': { type: 'string', multiple: true },
  'aggregator-config': { type: 'string' },
  timeout: { type: 'string' },
  'exit-when-done': { type: 'boolean' },
  out: { type: 'string' },
  'agreement-out': { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  experiment: { type: 'string' },
  'base-url': { type: 'string' },
  owner: { type: 'string' },
  apply: { type: 'boolean' },
  'admin-token-env': { type: 'string' },
  webhook: { type: 'string', multiple: true },
  'webhook-secret-env': { type: 'string' },
  'noise-seed-file': { type: 'string' },
  'noise-secret': { type: 'string' },
  round: { type: 'string' },
  'keep-rounds': { type: 'string' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** node's parseArgs throws plain errors for unknown or malformed flags: they are usage errors. */
function parseFlags(args: string[]) {
  try {
    return parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message, {}, { cause: e });
  }
}

async function participantConfig(role: 'aggregator' | 'edge', flags: Flags) {
  if (flags.config) return readParticipantConfig(flags.config);
  if (!flags.repos) throw new UsageError(`${role}: give --config participant.yaml, or --repos DIR${role === 'edge' ? ' and --name NAME' : ''}`);
  const raw = { role, ...(flags.name ? { name: flags.name } : {}), repos: { root: flags.repos }, ...(flags.logs ? { logs: flags.logs } : {}), ...(role === 'edge' && flags.data ? { data: flags.data } : {}) };
  const parsed = ParticipantSchema.safeParse(raw);
  if (!parsed.success) throw new UsageError(`${role}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`);
  return resolveParticipant(parsed.data, `${process.cwd()}/(command line)`);
}

type Invocation = { readonly flags: Flags; readonly positionals: readonly string[]; readonly deps: CliDeps };
type Command = (i: Invocation) => Promise<number>;

/** `KEY=VALUE` pairs of a repeatable flag. */
function pairs(values: readonly string[] | undefined, flag: string, shape: string): Record<string, string> {
  return Object.fromEntries((values ?? []).map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} takes ${shape}, got '${pair}'`);
    return [pair.slice(0, eq), pair.slice(eq + 1)];
  }));
}

async function runCommand({ flags, positionals, deps }: Invocation): Promise<number> {
  const planFile = positionals[0];
  if (!planFile) throw new UsageError('run: which plan? fedgit run config/<plan>.yaml');
  const edgeConfigs = pairs(flags['edge-config'], 'edge-config', 'EDGE=participant.yaml');
  const timeout = flags.timeout === undefined ? undefined : Number(flags.timeout);
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout takes a positive number of seconds, got '${flags.timeout}'`);
  const result = await runFederation({
    planFile,
    cli: deps.cli,
    repos: flags.repos ?? 'repos',
    logs: flags.logs ?? 'logs',
    results: flags.results ?? 'results',
    ...(flags['data-root'] ? { dataRoot: flags['data-root'] } : {}),
    newExperiment: flags.new ?? false,
    edgeConfigs,
    ...(flags['aggregator-config'] ? { aggregatorConfig: flags['aggregator-config'] } : {}),
    ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
  }, deps.registries);
  console.log(`\n${result.summary}`);
  return 0;
}

const participantCommand = (role: 'aggregator' | 'edge'): Command => async ({ flags, deps }) => {
  const config = await participantConfig(role, flags);
  if (config.role !== role) throw new UsageError(`${config.file} is a ${config.role} config; use fedgit ${config.role}`);
  await runParticipantProcess(config, deps.registries, { exitWhenDone: flags['exit-when-done'] ?? false });
  return 0;
};

async function logCommand({ flags, deps }: Invocation): Promise<number> {
  const where = await whereFrom(flags);
  const plan = await loadPlan(where, deps.registries, flags.plan);
  const global = await openForReading(where, where.locate([]).global, 'the global repository');
  console.log(renderRounds(plan, await readRounds(global, plan), await readFinalTag(global, plan)));
  return 0;
}

async function auditCommand({ flags, positionals, deps }: Invocation): Promise<number> {
  const commit = positionals[0];
  if (!commit) throw new UsageError('audit: which commit? fedgit audit <commit>');
  const report = await auditCommit(await whereFrom(flags), deps.registries, commit, await noiseAuditOptions(flags));
  console.log(renderAudit(report));
  return report.ok ? 0 : 1;
}

async function noiseSeedCommand({ flags, deps }: Invocation): Promise<number> {
  if (flags.round === undefined || !/^\d+$/.test(flags.round)) throw new UsageError(`noise-seed: which round? give --round N, a merged round ≥ 1${flags.round === undefined ? '' : ` (got '${flags.round}')`}`);
  if (!flags.out) throw new UsageError('noise-seed: where? give --out FILE, the seed file to create for the auditor');
  const { writeNoiseSeed, renderNoiseSeedWritten } = await import('./commands/noise-seed.js');
  const config = flags.config ? await readParticipantConfig(flags.config) : undefined;
  const secretFile = flags['noise-secret'] ?? (config?.role === 'aggregator' ? config.noiseSecret : undefined);
  const where = await whereFrom(flags);
  const plan = await loadPlan(where, deps.registries, flags.plan);
  console.log(renderNoiseSeedWritten(await writeNoiseSeed({ where, plan, round: Number(flags.round), out: flags.out, ...(secretFile ? { secretFile } : {}) })));
  return 0;
}

async function statusCommand({ flags, deps }: Invocation): Promise<number> {
  const where = await whereFrom(flags);
  console.log(await renderStatus(where, await loadPlan(where, deps.registries, flags.plan)));
  return 0;
}

async function pruneCommand({ flags, deps }: Invocation): Promise<number> {
  const keepRounds = parseKeepRounds(flags['keep-rounds']);
  const where = await whereFrom(flags);
  const plan = await loadPlan(where, deps.registries, flags.plan);
  console.log(renderPrune(await pruneLfsObjects(where, plan, { keepRounds, dryRun: flags['dry-run'] ?? false })));
  return 0;
}

/** Prints what the plan needs on a git server; with --apply, creates it on Gitea. */
async function setupCommand({ flags, positionals, deps }: Invocation): Promise<number> {
  const planFile = positionals[0];
  const baseUrl = flags['base-url'];
  if (!planFile || !baseUrl) throw new UsageError('setup: fedgit setup <plan.yaml> --base-url https://git.example.org [--owner fedgit] [--apply …]');
  const { readPlanFile } = await import('./plan/plan.js');
  const { setupPlan, renderSetup } = await import('./commands/setup.js');
  const { plan } = await readPlanFile(planFile, { apps: deps.registries.apps, strategies: deps.registries.strategies });
  const wanted = setupPlan(plan, flags.owner ?? 'fedgit');
  console.log(renderSetup(wanted, baseUrl));
  if (flags.apply) await applySetup(wanted, baseUrl, flags);
  return 0;
}

async function applySetup(wanted: SetupPlan, baseUrl: string, flags: Flags): Promise<void> {
  const tokenEnv = flags['admin-token-env'];
  const adminToken = tokenEnv ? process.env[tokenEnv] : undefined;
  if (!adminToken) throw new UsageError(`setup --apply needs --admin-token-env VAR naming a set environment variable that holds a Gitea admin token`);
  const webhookUrls = pairs(flags.webhook, 'webhook', 'PARTICIPANT=URL');
  const secretEnv = flags['webhook-secret-env'];
  const { applyToGitea } = await import('./commands/setup.js');
  const { passwords } = await applyToGitea(wanted, {
    baseUrl, adminToken, webhookUrls,
    ...(secretEnv && process.env[secretEnv] ? { webhookSecret: process.env[secretEnv] } : {}),
    say: (line) => console.log(line),
  });
  const created = Object.keys(passwords);
  if (created.length) console.log(`\nCreated users ${created.join(', ')} with random passwords; have each participant create an access token in Gitea and pass it through auth.tokenEnv or auth.tokenFile.`);
}

async function keygenCommand({ flags }: Invocation): Promise<number> {
  if (!flags.out) throw new UsageError('keygen: where should the private key go? fedgit keygen --out FILE [--name NAME]');
  const { keygen, renderKeygen } = await import('./commands/keygen.js');
  console.log(renderKeygen(await keygen({ out: flags.out, ...(flags['agreement-out'] ? { agreementOut: flags['agreement-out'] } : {}), ...(flags.name ? { name: flags.name } : {}) })));
  return 0;
}

const reportCommand = (command: 'report' | 'serve'): Command => async ({ flags, deps }) => {
  const { runReportCommand } = await import('./report/command.js');
  return runReportCommand(command, flags, deps.registries);
};

const COMMANDS: Readonly<Record<string, Command>> = {
  run: runCommand,
  aggregator: participantCommand('aggregator'),
  edge: participantCommand('edge'),
  log: logCommand,
  audit: auditCommand,
  'noise-seed': noiseSeedCommand,
  status: statusCommand,
  prune: pruneCommand,
  report: reportCommand('report'),
  serve: reportCommand('serve'),
  setup: setupCommand,
  keygen: keygenCommand,
};

export async function main(argv: string[], deps: CliDeps): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage(deps));
    return command ? 0 : 2;
  }
  const extra = deps.commands?.find((c) => c.name === command);
  if (extra) return extra.run(rest);
  const { values: flags, positionals } = parseFlags(rest);
  if (flags.help) {
    process.stdout.write(usage(deps));
    return 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) throw new UsageError(`unknown command '${command}'\n${usage(deps)}`);
  return run({ flags, positionals, deps });
}

/** Runs one command and returns the process's exit status; the only catch of the CLI. */
export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  try {
    return await main(argv, deps);
  } catch (e) {
    if (e instanceof FedgitError) {
      console.error(`fedgit: ${e.message}`);
      return e.exitCode;
    }
    console.error(`fedgit: unexpected error: ${(e as Error).stack ?? String(e)}`);
    return EXIT.failed;
  }
}

// The command used to live here (package.json's bin until December 2026); this module is now the
// CLI's library and bin/fedgit.ts wires it. An old script calling it directly is told so.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.error('fedgit: dist/operator/cli.js is no longer the command; run dist/bin/fedgit.js (npx fedgit)');
  process.exitCode = EXIT.usage;
}
