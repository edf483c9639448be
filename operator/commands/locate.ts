/** How the read-only commands (log, audit, status) find the repositories and the plan. */
import { readParticipantConfig, readToken, type ParticipantConfig } from '../config/participant.js';
import { createOpener, type RepositoryOpener } from '../store/open-repository.js';
import type { Repository } from '../git/repository.js';
import { NotFound } from '../errors.js';
import { PLAN_BRANCH, PLAN_FILE, shortId } from '../git/names.js';
import { parsePlan, type CommittedPlan } from '../plan/plan.js';
import { reposUnder, type RepoLocations } from '../store/federation.js';
import type { Registries } from '../runtime/registries.js';

export type Where = {
  readonly locate: (edges: readonly string[]) => RepoLocations;
  readonly open: RepositoryOpener;
};

export async function whereFrom(flags: { repos?: string; config?: string }): Promise<Where> {
  if (flags.config) {
    const config: ParticipantConfig = await readParticipantConfig(flags.config);
    const auth = await readToken(config);
    return { locate: config.locate, open: createOpener({ cacheDir: config.cache, ...(auth ? { auth } : {}) }) };
  }
  const root = flags.repos ?? 'repos';
  return { locate: (edges) => reposUnder(root, edges), open: createOpener() };
}

/** Opens (and, for a server, refreshes) a repository for reading. */
export async function openForReading(where: Where, location: string, what: string): Promise<Repository> {
  const repo = await where.open.require(location, what);
  await repo.refresh();
  return repo;
}

/** The plan at a plan-repository commit (default: the current head). */
export async function loadPlan(where: Where, registries: Registries, planSpec?: string): Promise<CommittedPlan> {
  const repo = await openForReading(where, where.locate([]).plan, 'the plan repository');
  const id = await repo.resolve(planSpec ?? PLAN_BRANCH).catch(() => {
    throw new NotFound(planSpec ? `no plan ${planSpec} in ${repo.gitdir}` : `no plan committed yet in ${repo.gitdir}`, { plan: planSpec });
  });
  const text = (await repo.readFile(id, PLAN_FILE)).toString('utf8');
  return { id, text, plan: parsePlan(text, `${PLAN_FILE}@${shortId(id)}`, { apps: registries.apps, strategies: registries.strategies }) };
}
