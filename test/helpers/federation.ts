/** Sets up a federation's repositories and plan without `fedgit run`, for tests that drive participants themselves. */
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { Repository } from '../../operator/git/repository.js';
import { commitPlan, reposUnder } from '../../operator/store/federation.js';
import { parsePlan, type CommittedPlan } from '../../operator/plan/plan.js';
import { builtinRegistries } from '../../bin/registries.js';

export async function setUpFederation(dir: string, yaml: string): Promise<{ plan: CommittedPlan; repos: string; where: ReturnType<typeof reposUnder> }> {
  const registries = builtinRegistries;
  const plan = parsePlan(yaml, 'plan.yaml', { apps: registries.apps, strategies: registries.strategies });
  const repos = path.join(dir, 'repos');
  const where = reposUnder(repos, plan.edges.map((e) => e.name));
  const planRepo = await Repository.ensureBare(where.plan);
  await Repository.ensureBare(where.global);
  for (const gitdir of Object.values(where.edges)) await Repository.ensureBare(gitdir);
  await writeFile(path.join(dir, 'plan.yaml'), yaml);
  const { id } = await commitPlan(planRepo, yaml, plan);
  return { plan: { id, plan, text: yaml }, repos, where };
}
