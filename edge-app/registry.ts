/**
 * The apps a plan can name. The operator loads this module through the
 * AppRegistry contract; heavy engines (TensorFlow.js, external commands) are
 * imported only when an edge actually creates an app, so the aggregator never
 * loads a framework.
 */
import type { z } from 'zod';
import type { AppRegistry, EdgeApp, LocalAppConfig, TensorSpec, Tensors } from '../operator/contracts.js';
import { FedgitError } from '../operator/errors.js';
import { LinearToyOptions, LINEAR_TOY_ARCHITECTURE, linearToySpec, linearToyInitialWeights, createLinearToyApp } from './toy/linear-toy.js';
import { NoopOptions, NOOP_ARCHITECTURE, noopSpec, noopInitialWeights, createNoopApp } from './toy/noop.js';
import { AspectsOptions } from './aspects/options.js';
import { ASPECTS_ARCHITECTURE, aspectsTensorSpec, initialAspectsWeights } from './aspects/spec.js';

type AppDefinition<O> = {
  readonly schema: z.ZodType<O>;
  readonly architecture: (options: O) => string;
  readonly spec: (options: O) => readonly TensorSpec[];
  readonly initialWeights: (options: O, seed: number) => Tensors | Promise<Tensors>;
  readonly builtin: (options: O, local: LocalAppConfig) => Promise<EdgeApp>;
};

const define = <O>(d: AppDefinition<O>): AppDefinition<unknown> => d as AppDefinition<unknown>;

const APPS: ReadonlyMap<string, AppDefinition<unknown>> = new Map([
  [
    'linear-toy',
    define<LinearToyOptions>({
      schema: LinearToyOptions,
      architecture: () => LINEAR_TOY_ARCHITECTURE,
      spec: linearToySpec,
      initialWeights: linearToyInitialWeights,
      builtin: async (o, local) => createLinearToyApp(o, local.edge),
    }),
  ],
  [
    'aspects-cnn',
    define<AspectsOptions>({
      schema: AspectsOptions,
      architecture: () => ASPECTS_ARCHITECTURE,
      spec: (o) => aspectsTensorSpec(o.grid),
      initialWeights: (o, seed) => initialAspectsWeights(seed, o.grid),
      async builtin(o, local) {
        if (!local.dataDir) throw new FedgitError('CONFIG_INVALID', `edge ${local.edge}: app aspects-cnn needs a data folder (participant config 'data', or --data)`, { edge: local.edge });
        const { createAspectsApp } = await import('./aspects/app.js');
        return createAspectsApp({
          dataDir: local.dataDir,
          grid: o.grid,
          batchSize: o.batchSize,
          learningRate: o.learningRate,
          validationFraction: o.validationFraction,
          logger: { info: (message: string) => local.log('info', message) },
        });
      },
    }),
  ],
  [
    'noop',
    define<NoopOptions>({
      schema: NoopOptions,
      architecture: () => NOOP_ARCHITECTURE,
      spec: noopSpec,
      initialWeights: noopInitialWeights,
      builtin: async (o) => createNoopApp(o),
    }),
  ],
]);

function app(id: string): AppDefinition<unknown> {
  const definition = APPS.get(id);
  if (!definition) throw new FedgitError('APP_UNKNOWN', `unknown app '${id}' (known: ${[...APPS.keys()].join(', ')})`, { id });
  return definition;
}

export const apps: AppRegistry = {
  ids: () => [...APPS.keys()],
  optionsSchema: (id) => app(id).schema,
  architecture: (id, options) => app(id).architecture(options),
  tensorSpec: (id, options) => app(id).spec(options),
  initialWeights: async (id, options, seed) => app(id).initialWeights(options, seed),
  async createEdgeApp(id, options, local) {
    const definition = app(id);
    switch (local.engine.kind) {
      case 'builtin':
        return definition.builtin(options, local);
      case 'command': {
        const { createCommandApp } = await import('./command/command-app.js');
        const spec = definition.spec(options);
        return createCommandApp({
          command: [...local.engine.command],
          dataDir: local.dataDir ?? '.',
          architecture: definition.architecture(options),
          initialWeights: (seed: number) => definition.initialWeights(options, seed),
          ...(local.engine.timeoutMs !== undefined ? { timeoutMs: local.engine.timeoutMs } : {}),
          ...(local.engine.retries !== undefined ? { retries: local.engine.retries } : {}),
          env: { FEDGIT_APP_OPTIONS: JSON.stringify(options), ...local.engine.env },
          spec,
          log: local.log,
        });
      }
      default: {
        const never: never = local.engine;
        throw new Error(`unknown engine ${JSON.stringify(never)}`);
      }
    }
  },
};
export default apps;
