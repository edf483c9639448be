/**
 * The apps and strategies a participant can use. The operator reaches them
 * only through the contracts; the composition root (bin/fedgit.ts) imports
 * the registries and hands them in.
 */
import type { AppRegistry, StrategyRegistry } from '../contracts.js';

export type Registries = { readonly apps: AppRegistry; readonly strategies: StrategyRegistry };
