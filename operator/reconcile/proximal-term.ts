/**
 * FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020) on the edge
 * side: what μ a plan asks each edge to train with, and whether the edge's app can. The server side
 * is FedAvg (aggregator-app/registry.ts, strategy `fedprox`).
 */
import type { EdgeApp, StrategyRegistry } from '../contracts.js';
import type { Plan } from '../plan/plan.js';

/** The one strategy whose options carry a proximal μ for the edges. */
export const FEDPROX = 'fedprox';

/** μ of the proximal term the edges add to their local loss: the plan's `mu` (default applied) for fedprox, else 0. */
export function proximalMuOf(plan: Pick<Plan, 'strategy' | 'strategyOptions'>, strategies: StrategyRegistry): number {
  if (plan.strategy !== FEDPROX) return 0;
  return (strategies.optionsSchema(FEDPROX).parse(plan.strategyOptions) as { mu: number }).mu;
}

/** Why this app cannot train the plan's rounds (it would silently drop the proximal term), or undefined. */
export function proximalTermProblem(plan: Pick<Plan, 'name' | 'app'>, mu: number, app: Pick<EdgeApp, 'appliesProximalTerm' | 'architecture'>): string | undefined {
  if (mu === 0 || app.appliesProximalTerm === true) return undefined;
  return `plan ${plan.name} uses strategy ${FEDPROX} (μ = ${mu}), but app ${plan.app.id} (${app.architecture}) cannot add the proximal term to its loss; not training this plan (use an app that applies it — linear-toy, aspects-cnn, an external command — or strategy fedavg)`;
}
