/** Aggregation strategies by the name a plan uses. */
import type { Strategy, StrategyRegistry } from '../sdk/index.js';
import { UnknownComponent } from '../sdk/index.js';
import { fedAvgStrategy } from './fedavg.js';
import { medianStrategy, trimmedMeanStrategy } from './robust.js';

const STRATEGIES: ReadonlyMap<string, Strategy> = new Map([fedAvgStrategy, medianStrategy, trimmedMeanStrategy].map((s) => [s.name, s]));

export const strategies: StrategyRegistry = {
  ids: () => [...STRATEGIES.keys()],
  get(name) {
    const strategy = STRATEGIES.get(name);
    if (!strategy) throw new UnknownComponent('strategy', name, [...STRATEGIES.keys()]);
    return strategy;
  },
};
