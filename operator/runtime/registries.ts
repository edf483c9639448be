/**
 * The operator reaches the apps and strategies only through the contracts.
 * The modules that implement them are loaded here by path, so nothing in
 * operator/ imports an app statically.
 */
import type { AppRegistry, StrategyRegistry } from '../contracts.js';

export type Registries = { readonly apps: AppRegistry; readonly strategies: StrategyRegistry };

const APP_REGISTRY_MODULE = '../../edge-app/registry.js';
const STRATEGY_REGISTRY_MODULE = '../../aggregator-app/registry.js';

export async function loadRegistries(): Promise<Registries> {
  const [apps, strategies] = await Promise.all([import(APP_REGISTRY_MODULE), import(STRATEGY_REGISTRY_MODULE)]);
  return { apps: (apps as { apps: AppRegistry }).apps, strategies: (strategies as { strategies: StrategyRegistry }).strategies };
}
