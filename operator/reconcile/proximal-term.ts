/**
 * FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020) on the edge
 * side: what μ a plan asks each edge to train with, and whether the edge's app can. The server side
 * is FedAvg (aggregator-app/registry.ts, strategy `fedprox`). Which strategies ask for μ is a
 * capability the strategy registry declares (`proximalMu`), not a comparison with an id.
 */
import type { EdgeApp, StrategyRegistry } from '../contracts.js';
import type { Plan } from '../plan/plan.js';

/** μ of the proximal term the edges add to their local loss, as the plan's strategy declares it (the registry's `proximalMu`), 0 for none. */
export function proximalMuOf(plan: Pick<Plan, 'strategy' | 'strategyOptions'>, strategies: StrategyRegistry): number {
  return strategies.proximalMu(plan.strategy, plan.strategyOptions);
}

/** Why this app cannot train the plan's rounds (it would silently drop the proximal term), or undefined. */
export function proximalTermProblem(plan: Pick<Plan, 'name' | 'app'> & Partial<Pick<Plan, 'strategy'>>, mu: number, app: Pick<EdgeApp, 'appliesProximalTerm' | 'architecture'>): string | undefined {
  if (mu === 0 || app.appliesProximalTerm === true) return undefined;
  return `plan ${plan.name} uses strategy ${plan.strategy ?? 'fedprox'} (μ = ${mu}), but app ${plan.app.id} (${app.architecture}) cannot add the proximal term to its loss; not training this plan (use an app that applies it — linear-toy, aspects-cnn, an external command — or strategy fedavg)`;
}
