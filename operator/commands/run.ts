/**
 * `fedgit run plan.yaml`: the whole federation on one machine. Creates the
 * bare repositories, commits the plan, supervises the aggregator and every
 * edge as separate processes, and returns when the final global commit is tagged.
 */
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { readPlanFile, type CommittedPlan, type Plan } from '../plan/plan.js';
import { updateProblem } from '../reconcile/validate-update.js';
import { Repository } from '../git/repository.js';
import { shortId, inferenceTag, WEIGHTS_FILE } from '../git/names.js';
import { commitPlan, readFinalTag, readGlobalHead, readWeights, reposUnder } from '../store/federation.js';
import { RefWatcher } from '../runtime/ref-watcher.js';
import { Supervisor } from '../runtime/supervisor.js';
import type { Registries } from '../runtime/registries.js';
import { readRounds, renderRounds } from './log.js';
import { PlanInvalid, RunTimedOut, UsageError } from '../errors.js';

export type RunOptions = {
  readonly planFile: string;
  /** The fedgit entry point (bin/fedgit.js), started once per participant. */
  readonly cli: string;
  readonly repos: string;
  readonly logs: string;
  readonly results: string;
  readonly dataRoot?: string;
  readonly newExperiment?: boolean;
  /** Per edge, a participant config file to use instead of the defaults. */
  readonly edgeConfigs?: Readonly<Record<string, string>>;
  /** A participant config for the aggregator instead of the defaults (e.g. to give it a signing key). */
  readonly aggregatorConfig?: string;
  readonly timeoutMs?: number;
  readonly say?: (line: string) => void;
};

export type RunResult = { readonly plan: CommittedPlan; readonly finalCommit: string; readonly exported: string; readonly summary: string };

export async function runFederation(o: RunOptions, registries: Registries): Promise<RunResult> {
  const say = o.say ?? ((line: string) => console.log(line));
  // Everything is checked before anything is written.
  const { plan, text } = await readPlanFile(o.planFile, { apps: registries.apps, strategies: registries.strategies });
  const edges = plan.edges.map((e) => e.name);
  for (const [edge] of Object.entries(o.edgeConfigs ?? {})) {
    if (!edges.includes(edge)) throw new UsageError(`--edge-config names ${edge}, which is not an edge of plan ${plan.name} (${edges.join(', ')})`, { edge });
  }
  const where = reposUnder(o.repos, edges);
  if (plan.pretrained) await checkPretrained(where.global, plan, o.planFile, text, registries);
  const planRepo = await Repository.ensureBare(where.plan);
  const global = await Repository.ensureBare(where.global);
  for (const gitdir of Object.values(where.edges)) await Repository.ensureBare(gitdir);
  const committed = await commitPlan(planRepo, text, plan, { forceNew: o.newExperiment ?? false });
  const current: CommittedPlan = { id: committed.id, plan, text };
  say(`[run] plan ${plan.name} ${committed.created ? 'committed' : 'unchanged, resuming'} as ${shortId(committed.id)} in ${where.plan}`);

  const finished = finalTag(global, current, say, o.timeoutMs);
  const supervisor = new Supervisor({ say });
  startParticipants(supervisor, o, edges);
  let finalCommit: string;
  try {
    finalCommit = await finished;
  } finally {
    await supervisor.stopAll();
  }
  const exported = await exportFinalWeights(global, finalCommit, path.join(o.results, `${plan.name}-${shortId(committed.id)}`));
  const summary = [
    renderRounds(current, await readRounds(global, current), finalCommit),
    '',
    `Final weights: ${where.global} at ${finalCommit}`,
    `  tag ${inferenceTag(plan.name, committed.id).replace('refs/tags/', '')}; exported to ${exported}`,
    `  audit any merge with: fedgit audit <commit> --repos ${o.repos}`,
  ].join('\n');
  return { plan: current, finalCommit, exported, summary };
}

/** Starts the aggregator and every edge as child processes of `o.cli`, with the defaults or their own configs. */
function startParticipants(supervisor: Supervisor, o: RunOptions, edges: readonly string[]): void {
  const common = ['--repos', path.resolve(o.repos), '--logs', path.resolve(o.logs)];
  supervisor.start({ name: 'aggregator', args: [o.cli, 'aggregator', ...(o.aggregatorConfig ? ['--config', path.resolve(o.aggregatorConfig)] : common)] });
  for (const edge of edges) {
    const config = o.edgeConfigs?.[edge];
    const args = config ? ['--config', path.resolve(config)] : ['--name', edge, ...common, ...(o.dataRoot ? ['--data', path.resolve(o.dataRoot, edge)] : [])];
    supervisor.start({ name: edge, args: [o.cli, 'edge', ...args] });
  }
}

/** Resolves with the final commit once the plan's inference tag exists, printing each new global round; rejects after `timeoutMs`. */
function finalTag(global: Repository, plan: CommittedPlan, say: (line: string) => void, timeoutMs: number | undefined): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let lastRound = -1;
    let checking = false;
    const watcher = new RefWatcher({ gitdirs: [global.gitdir], onChange: () => void check() });
    const timeout = timeoutMs ? setTimeout(() => (void watcher.stop(), reject(new RunTimedOut(`plan ${plan.plan.name} did not finish within ${timeoutMs} ms`, { plan: plan.plan.name, timeoutMs }))), timeoutMs) : undefined;
    const check = async () => {
      if (checking) return;
      checking = true;
      try {
        const head = await readGlobalHead(global, plan);
        if (head && head.round > lastRound) {
          lastRound = head.round;
          say(`[run] global round ${head.round}/${plan.plan.rounds}: ${shortId(head.oid)}`);
        }
        const tag = await readFinalTag(global, plan);
        if (tag) {
          clearTimeout(timeout);
          await watcher.stop();
          resolve(tag);
        }
      } finally {
        checking = false;
      }
    };
    void watcher.start().then(check, reject);
  });
}

async function exportFinalWeights(global: Repository, finalCommit: string, exportDir: string): Promise<string> {
  await mkdir(exportDir, { recursive: true });
  const exported = path.join(exportDir, WEIGHTS_FILE);
  await writeFile(exported, await global.readFile(finalCommit, WEIGHTS_FILE));
  return exported;
}

/** `pretrained` must name weights of this app in the global repository: checked before anything is written. */
async function checkPretrained(globalDir: string, plan: Plan, file: string, text: string, registries: Registries): Promise<void> {
  const line = text.split('\n').findIndex((l) => /^pretrained\s*:/.test(l)) + 1;
  const fail = (why: string) => new PlanInvalid(`${file}${line ? `:${line}` : ''}: pretrained: ${why}`, { file, field: 'pretrained', ...(line ? { line } : {}) });
  if (!(await Repository.isRepository(globalDir))) throw fail(`'${plan.pretrained}' cannot be found: there is no global repository at ${globalDir} yet`);
  const global = new Repository(globalDir);
  const commit = await global.resolve(plan.pretrained!).catch(() => {
    throw fail(`'${plan.pretrained}' is not a commit or ref of ${globalDir}`);
  });
  const tensors = await readWeights(global, commit).catch((e: Error) => {
    throw fail(`${shortId(commit)} holds no readable weights (${e.message})`);
  });
  const problem = updateProblem(tensors, registries.apps.tensorSpec(plan.app.id, plan.app.options), 1);
  if (problem) throw fail(`the weights of ${shortId(commit)} do not fit app ${plan.app.id}: ${problem}`);
}
