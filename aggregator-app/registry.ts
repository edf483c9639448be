/** Aggregation strategies by the id a plan uses, with the options each takes. */
import { z } from 'zod';
import type { Strategy, StrategyRegistry } from '../sdk/index.js';
import { UnknownComponent } from '../sdk/index.js';
import { fedAvgStrategy } from './fedavg.js';
import { medianStrategy, trimmedMeanStrategy } from './robust.js';
import { krumProblem, krumStrategy } from './krum.js';

type Entry = {
  readonly options: z.ZodType;
  readonly create: (options: never) => Strategy;
  readonly planProblem?: (options: never, edgeCount: number) => string | undefined;
  /** FedAvg's weights follow dataset sizes; the robust rules ignore them. */
  readonly weighsByDatasetSize?: boolean;
};

const NO_OPTIONS = z.strictObject({});
const fixed = (strategy: Strategy): Entry => ({ options: NO_OPTIONS, create: () => strategy });

/** f: the Byzantine edges the plan assumes; multi-Krum also m, how many of the best-scored updates it averages. */
const KrumOptions = z.strictObject({ f: z.number().int().min(0).max(1_000) });
const MultiKrumOptions = z.strictObject({ f: z.number().int().min(0).max(1_000), m: z.number().int().min(1).max(1_000) });

const ENTRIES: ReadonlyMap<string, Entry> = new Map<string, Entry>([
  ['fedavg', { ...fixed(fedAvgStrategy), weighsByDatasetSize: true }],
  ['median', fixed(medianStrategy)],
  ['trimmed-mean', fixed(trimmedMeanStrategy)],
  ['krum', {
    options: KrumOptions,
    create: (o: z.output<typeof KrumOptions>) => krumStrategy('krum', { f: o.f, m: 1 }),
    planProblem: (o: z.output<typeof KrumOptions>, n: number) => krumProblem({ f: o.f, m: 1 }, n),
  }],
  ['multi-krum', {
    options: MultiKrumOptions,
    create: (o: z.output<typeof MultiKrumOptions>) => krumStrategy('multi-krum', o),
    planProblem: (o: z.output<typeof MultiKrumOptions>, n: number) => krumProblem(o, n),
  }],
]);

function entry(id: string): Entry {
  const found = ENTRIES.get(id);
  if (!found) throw new UnknownComponent('strategy', id, [...ENTRIES.keys()]);
  return found;
}

export const strategies: StrategyRegistry = {
  ids: () => [...ENTRIES.keys()],
  optionsSchema: (id) => entry(id).options,
  weighsByDatasetSize: (id) => entry(id).weighsByDatasetSize === true,
  planProblem: (id, options, edgeCount) => entry(id).planProblem?.(options as never, edgeCount),
  get: (id, options = {}) => entry(id).create(entry(id).options.parse(options) as never),
};
