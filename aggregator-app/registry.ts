/** Aggregation strategies by the id a plan uses, with the options each takes. */
import { z } from 'zod';
import type { Strategy, StrategyRegistry } from '../sdk/index.js';
import { UnknownComponent } from '../sdk/index.js';
import { fedAvgStrategy } from './fedavg.js';
import { medianStrategy, TRIM_FRACTION, trimmedMeanWith } from './robust.js';
import { krumProblem, krumStrategy } from './krum.js';
import { fedAvgMStrategy } from './fedavgm.js';
import { fedAdagradStrategy } from './fedadagrad.js';
import { fedAdamStrategy } from './fedadam.js';
import { fedYogiStrategy } from './fedyogi.js';

type Entry = {
  readonly options: z.ZodType;
  readonly create: (options: never) => Strategy;
  readonly planProblem?: (options: never, edgeCount: number) => string | undefined;
  /** μ of the proximal term this strategy asks the edges to add to their local loss (FedProx), from its validated options; absent: 0. */
  readonly proximalMu?: (options: never) => number;
  /** FedAvg's weights (and the server optimisers', which start from FedAvg) follow dataset sizes; the robust rules ignore them. */
  readonly weighsByDatasetSize?: boolean;
  /**
   * The merge follows from FedAvg's weighted mean (`Strategy.average`), so the aggregator reads one
   * update at a time; absent: the strategy needs every update at once (median, trimmed mean, Krum)
   * and the aggregator holds them all, its memory growing with the number of edges.
   */
  readonly streams?: boolean;
};

const NO_OPTIONS = z.strictObject({});
const fixed = (strategy: Strategy): Entry => ({ options: NO_OPTIONS, create: () => strategy });

/** f: the Byzantine edges the plan assumes; multi-Krum also m, how many of the best-scored updates it averages. */
/** β of the trimmed mean: the share of values dropped at each end of every parameter; below 1/2 or nothing would remain. */
const TrimmedMeanOptions = z.strictObject({ beta: z.number().min(0).lt(0.5).default(TRIM_FRACTION) });
const FedProxOptions = z.strictObject({ mu: z.number().min(0).max(1_000).default(0.01) });

const KrumOptions = z.strictObject({ f: z.number().int().min(0).max(1_000) });
const MultiKrumOptions = z.strictObject({ f: z.number().int().min(0).max(1_000), m: z.number().int().min(1).max(1_000) });

/**
 * The server optimisers' options. η, the server learning rate, has no default in Reddi et al. (it
 * is tuned per task); these are Flower's. β1 = 0.9, β2 = 0.99 and τ = 10⁻³ are the paper's.
 */
const eta = (fallback: number) => z.number().positive().max(1_000).default(fallback);
const decay = (fallback: number) => z.number().min(0).lt(1).default(fallback);
const tau = z.number().positive().max(1).default(1e-3);
const FedAvgMOptions = z.strictObject({ eta: eta(1), beta: decay(0.9) });
const FedAdagradOptions = z.strictObject({ eta: eta(0.1), beta1: decay(0.9), tau });
const FedAdamOptions = z.strictObject({ eta: eta(0.1), beta1: decay(0.9), beta2: decay(0.99), tau });
const FedYogiOptions = z.strictObject({ eta: eta(0.01), beta1: decay(0.9), beta2: decay(0.99), tau });

const serverOptimiser = <S extends z.ZodType>(options: S, create: (o: z.output<S>) => Strategy): Entry => ({ options, create, weighsByDatasetSize: true, streams: true });

const ENTRIES: ReadonlyMap<string, Entry> = new Map<string, Entry>([
  ['fedavg', { ...fixed(fedAvgStrategy), weighsByDatasetSize: true, streams: true }],
  // FedProx (Li et al., MLSys 2020): each edge adds (μ/2)·‖w − w_global‖² to its local loss; the merge is FedAvg's.
  // μ defaults to 0.01, a mild pull from the middle of the paper's grid {0.001, 0.01, 0.1, 1} (docs/fedprox.md).
  ['fedprox', {
    options: FedProxOptions,
    create: () => ({ ...fedAvgStrategy, name: 'fedprox' }),
    weighsByDatasetSize: true,
    streams: true,
    proximalMu: (o: z.output<typeof FedProxOptions>) => o.mu,
  }],
  ['median', fixed(medianStrategy)],
  ['trimmed-mean', { options: TrimmedMeanOptions, create: (o: z.output<typeof TrimmedMeanOptions>) => trimmedMeanWith(o.beta) }],
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
  ['fedavgm', serverOptimiser(FedAvgMOptions, fedAvgMStrategy)],
  ['fedadagrad', serverOptimiser(FedAdagradOptions, fedAdagradStrategy)],
  ['fedadam', serverOptimiser(FedAdamOptions, fedAdamStrategy)],
  ['fedyogi', serverOptimiser(FedYogiOptions, fedYogiStrategy)],
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
  streamsUpdates: (id) => entry(id).streams === true,
  proximalMu: (id, options = {}) => entry(id).proximalMu?.(entry(id).options.parse(options) as never) ?? 0,
  planProblem: (id, options, edgeCount) => entry(id).planProblem?.(options as never, edgeCount),
  get: (id, options = {}) => entry(id).create(entry(id).options.parse(options) as never),
};
