/**
 * The federated arm: the plan YAML and participant configs the experiment
 * writes, and `fedgit run` as a child process whose output is streamed.
 */
import { spawn, execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parsePlan, type Plan } from '../operator/plan/plan.js';
import { apps } from '../edge-app/registry.js';
import type { RegionOptions } from '../edge-app/aspects/region-options.js';
import { ExperimentFailed, ExperimentUsage } from './errors.js';
import type { Say } from './cohort.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** dist/experiment → the package root (holding config/ and edge-app/python/). */
export const PACKAGE_ROOT = path.resolve(HERE, '..', '..');
export const TORCH_SCRIPT = path.join(PACKAGE_ROOT, 'edge-app', 'python', 'aspects_torch.py');

export type EngineChoice = 'tfjs' | 'torch';

export type PlanOverrides = { readonly rounds?: number; readonly epochsPerRound?: number; readonly seed?: number };

export type ExperimentPlan = { readonly text: string; readonly plan: Plan; readonly options: RegionOptions };

/** The template plan with the overrides applied, checked like `fedgit run` checks it. */
export function buildPlan(templateText: string, templateFile: string, overrides: PlanOverrides): ExperimentPlan {
  const check = (text: string, file: string) => parsePlan(text, file, { apps });
  const template = check(templateText, templateFile);
  if (template.app.id !== 'aspects-cnn') throw new ExperimentUsage(`${templateFile}: the experiment needs app aspects-cnn, the plan names ${template.app.id}`);
  refuseUnrunnable(template, templateFile);
  const raw: Record<string, unknown> = {
    name: template.name,
    rounds: overrides.rounds ?? template.rounds,
    epochsPerRound: overrides.epochsPerRound ?? template.epochsPerRound,
    edges: template.edges.map((e) => (e.maxDatasetSize !== undefined ? { name: e.name, maxDatasetSize: e.maxDatasetSize } : e.name)),
    roundDeadline: `${Math.round(template.roundDeadlineMs / 1000)}s`,
    minEdges: template.minEdges,
    // The strategy with its options (fedprox's μ, fedadam's η…), and the merge's bounds: the template's choices, not defaults.
    strategy: Object.keys(template.strategyOptions).length ? { id: template.strategy, options: template.strategyOptions } : template.strategy,
    ...(template.clip ? { clip: template.clip } : {}),
    ...(template.maxShare !== undefined ? { maxShare: template.maxShare } : {}),
    // Dropping it would run the federation without DP while the template asked for it.
    ...(template.privacy ? { privacy: template.privacy } : {}),
    seed: overrides.seed ?? template.seed,
    app: { id: template.app.id, options: template.app.options },
  };
  const text = `# Written by fedgit experiment from ${templateFile}\n${stringify(raw)}`;
  const plan = check(text, templateFile);
  return { text, plan, options: plan.app.options as RegionOptions };
}

/**
 * What the experiment cannot honour, refused rather than dropped: it starts its own participants
 * (no signing keys) on fresh repositories (no commit to start from).
 */
function refuseUnrunnable(template: Plan, templateFile: string): void {
  const keyed = template.edges.findIndex((e) => e.publicKey);
  if (keyed >= 0) throw new ExperimentUsage(`${templateFile}: edges[${keyed}].publicKey: fedgit experiment starts its own participants, which have no signing keys; run a signed plan with fedgit run and --edge-config`);
  if (template.aggregator) throw new ExperimentUsage(`${templateFile}: aggregator.publicKey: fedgit experiment starts its own aggregator, which has no signing key; run a signed plan with fedgit run and --aggregator-config`);
  if (template.pretrained) throw new ExperimentUsage(`${templateFile}: pretrained: fedgit experiment starts on fresh repositories, where ${template.pretrained} names no commit; run it with fedgit run`);
}

export type EdgeEngine = { readonly edge: string; readonly engine: EngineChoice };

/** Participant config of an edge that runs the PyTorch reference command; returns its path. */
export async function writeTorchEdgeConfig(o: { dir: string; edge: string; repos: string; data: string; logs: string; options: RegionOptions; python: string }): Promise<string> {
  const config = {
    role: 'edge',
    name: o.edge,
    repos: { root: path.resolve(o.repos) },
    data: path.resolve(o.data),
    logs: path.resolve(o.logs),
    engine: {
      command: [o.python, TORCH_SCRIPT],
      timeout: '1h',
      env: {
        FEDGIT_HIDDEN: String(o.options.hidden),
        FEDGIT_LR: String(o.options.learningRate),
        FEDGIT_BATCH_SIZE: String(o.options.batchSize),
        FEDGIT_VALIDATION_FRACTION: String(o.options.validationFraction),
        // two edges share the cores; one thread each avoids oversubscription
        FEDGIT_THREADS: '1',
      },
    },
  };
  await mkdir(o.dir, { recursive: true });
  const file = path.join(o.dir, `edge-${o.edge}.yaml`);
  await writeFile(file, `# Written by fedgit experiment: edge ${o.edge} trains with PyTorch (${TORCH_SCRIPT})\n${stringify(config)}`);
  return file;
}

/** Throws ExperimentUsage unless `python -c 'import torch, numpy, nibabel'` works. */
export function checkTorchAvailable(python: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(python, ['-c', 'import torch, numpy, nibabel'], { timeout: 120_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = (stderr || error.message).trim().split('\n').pop() ?? error.message;
      reject(new ExperimentUsage(`--engine ...=torch needs ${python} with torch, numpy and nibabel: ${why}`));
    });
  });
}

export type FederatedRun = { readonly exported: string; readonly finalCommit: string | undefined; readonly seconds: number; readonly output: string };

/**
 * Runs `fedgit run` as a child process, streaming its output line by line
 * (prefixed), and returns the exported final weights it reports. `cli` is the
 * fedgit entry point (bin/fedgit.js), handed down by the composition root.
 */
export function runFederatedChild(args: readonly string[], o: { cli: string; say: Say; cwd?: string; signal?: AbortSignal; prefix?: string }): Promise<FederatedRun> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [o.cli, 'run', ...args], { cwd: o.cwd ?? process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const prefix = o.prefix ?? '';
    const pending = { stdout: '', stderr: '' };
    const feed = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      pending[which] += text;
      const lines = pending[which].split('\n');
      pending[which] = lines.pop()!;
      for (const line of lines) o.say(`${prefix}${line}`);
    };
    child.stdout.on('data', feed('stdout'));
    child.stderr.on('data', feed('stderr'));
    const onAbort = () => child.kill('SIGTERM');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => reject(new ExperimentFailed(`could not start fedgit run: ${e.message}`, {}, { cause: e })));
    child.once('close', (code, signal) => {
      o.signal?.removeEventListener('abort', onAbort);
      for (const rest of [pending.stdout, pending.stderr]) if (rest) o.say(`${prefix}${rest}`);
      const seconds = (Date.now() - started) / 1000;
      if (code !== 0) {
        const last = output.trim().split('\n').filter((l) => l.startsWith('fedgit:')).pop();
        return reject(new ExperimentFailed(`fedgit run failed (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last.replace(/^fedgit:\s*/, '')}` : ''}`, { code, signal }));
      }
      const exported = /exported to (\S.*)$/m.exec(output)?.[1]?.trim();
      if (!exported) return reject(new ExperimentFailed('fedgit run finished but did not report where it exported the final weights'));
      const finalCommit = /^Final weights: .* at ([0-9a-f]{40})$/m.exec(output)?.[1];
      resolve({ exported: path.resolve(o.cwd ?? process.cwd(), exported), finalCommit, seconds, output });
    });
  });
}
