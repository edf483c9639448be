/** How the read-only commands (log, audit, status) find the repositories and the plan. */
import { readParticipantConfig, type ParticipantConfig } from '../config/participant.js';
import { Repository } from '../git/repository.js';
import { NotFound } from '../errors.js';
import { PLAN_FILE, shortId } from '../git/names.js';
import { parsePlan, type CommittedPlan } from '../plan/plan.js';
import { reposUnder, type RepoLocations } from '../store/federation.js';
import type { Registries } from '../runtime/registries.js';

export type Where = { readonly locate: (edges: readonly string[]) => RepoLocations };

export async function whereFrom(flags: { repos?: string; config?: string }): Promise<Where> {
  if (flags.config) {
    const config: ParticipantConfig = await readParticipantConfig(flags.config);
    return { locate: config.locate };
  }
  const root = flags.repos ?? 'repos';
  return { locate: (edges) => reposUnder(root, edges) };
}

/** The plan at a plan-repository commit (default: the current head). */
export async function loadPlan(where: Where, registries: Registries, planSpec?: string): Promise<CommittedPlan> {
  const repo = await Repository.open(where.locate([]).plan);
  const id = await repo.resolve(planSpec ?? 'refs/heads/main').catch(() => {
    throw new NotFound(planSpec ? `no plan ${planSpec} in ${repo.gitdir}` : `no plan committed yet in ${repo.gitdir}`, { plan: planSpec });
  });
  const text = (await repo.readFile(id, PLAN_FILE)).toString('utf8');
  return { id, text, plan: parsePlan(text, `${PLAN_FILE}@${shortId(id)}`, { apps: registries.apps, strategies: registries.strategies.ids() }) };
}
