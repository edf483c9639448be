/** Aggregation strategies by the name a plan uses. */
import type { Strategy, StrategyRegistry } from '../sdk/index.js';
import { UnknownComponent } from '../sdk/index.js';
import { fedAvgStrategy } from './fedavg.js';

const STRATEGIES: ReadonlyMap<string, Strategy> = new Map([[fedAvgStrategy.name, fedAvgStrategy]]);

export const strategies: StrategyRegistry = {
  ids: () => [...STRATEGIES.keys()],
  get(name) {
    const strategy = STRATEGIES.get(name);
    if (!strategy) throw new UnknownComponent('strategy', name, [...STRATEGIES.keys()]);
    return strategy;
  },
};
