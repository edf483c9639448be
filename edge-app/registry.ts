/**
 * The apps a plan can name. The operator loads this module through the
 * AppRegistry contract; heavy engines (TensorFlow.js, external commands) are
 * imported only when an edge actually creates an app, so the aggregator never
 * loads a framework.
 */
import type { z } from 'zod';
import type { AppRegistry, EdgeApp, LocalAppConfig, TensorSpec, Tensors } from '../sdk/index.js';
import { ConfigInvalid, UnknownComponent } from '../sdk/index.js';
import { LinearToyOptions, LINEAR_TOY_ARCHITECTURE, linearToySpec, linearToyInitialWeights, createLinearToyApp } from './toy/linear-toy.js';
import { NoopOptions, NOOP_ARCHITECTURE, noopSpec, noopInitialWeights, createNoopApp } from './toy/noop.js';
import { AspectsOptions } from './aspects/options.js';
import { RegionOptions } from './aspects/region-options.js';
import { REGION_ARCHITECTURE, initialRegionWeights, regionTensorSpec } from './aspects/region-spec.js';
import { ASPECTS_ARCHITECTURE, aspectsTensorSpec, initialAspectsWeights } from './aspects/spec.js';

type AppDefinition<O> = {
  readonly schema: z.ZodType<O>;
  readonly architecture: (options: O) => string;
  readonly spec: (options: O) => readonly TensorSpec[];
  readonly initialWeights: (options: O, seed: number) => Tensors | Promise<Tensors>;
  readonly builtin: (options: O, local: LocalAppConfig) => Promise<EdgeApp>;
  /** Inputs an external command needs besides the weights (CommandAppOptions.prepareInputs). */
  readonly commandInputs?: (options: O, local: LocalAppConfig) => (workDir: string, signal: AbortSignal) => Promise<Readonly<Record<string, string>>>;
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
  // aspects-region/v3 (edge-app/aspects/MODEL.md); `aspects-cnn` is the id plans and the default job use.
  ['aspects-cnn', regionApp()],
  ['aspects-region', regionApp()],
  // The v2 grid CNN, for plans that pin it explicitly.
  [
    'aspects-cnn-v2',
    define<AspectsOptions>({
      schema: AspectsOptions,
      architecture: () => ASPECTS_ARCHITECTURE,
      spec: (o) => aspectsTensorSpec(o.grid),
      initialWeights: (o, seed) => initialAspectsWeights(seed, o.grid),
      async builtin(o, local) {
        const { createAspectsApp } = await import('./aspects/app.js');
        return createAspectsApp({
          dataDir: needData(local, 'aspects-cnn-v2'),
          grid: o.grid,
          batchSize: o.batchSize,
          learningRate: o.learningRate,
          validationFraction: o.validationFraction,
          logger: local.log,
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

function needData(local: LocalAppConfig, id: string): string {
  if (!local.dataDir) throw new ConfigInvalid(`edge ${local.edge}: app ${id} needs a data folder (participant config 'data', or --data)`, { field: 'data', edge: local.edge });
  return local.dataDir;
}

function regionApp(): AppDefinition<unknown> {
  return define<RegionOptions>({
    schema: RegionOptions,
    architecture: () => REGION_ARCHITECTURE,
    spec: (o) => regionTensorSpec(o.hidden),
    initialWeights: (o, seed) => initialRegionWeights(seed, o.hidden),
    async builtin(o, local) {
      const { createRegionApp } = await import('./aspects/region-app.js');
      return createRegionApp({
        dataDir: needData(local, 'aspects-cnn'),
        hidden: o.hidden,
        batchSize: o.batchSize,
        learningRate: o.learningRate,
        validationFraction: o.validationFraction,
        registration: o.registration,
        templateFile: o.templateFile,
        atlasFile: o.atlasFile,
        logger: local.log,
      });
    },
    // The external engine gets the features fedgit computed (registration needs elastix and the atlas).
    commandInputs(o, local) {
      let rendered: Promise<Buffer> | undefined;
      return async (workDir) => {
        const dataDir = needData(local, 'aspects-cnn');
        rendered ??= (async () => {
          const [{ loadRegionCohort }, { renderFeaturesFile }, { atlasSource }] = await Promise.all([
            import('./preprocess/region-cohort.js'), import('./aspects/region-features-file.js'), import('./aspects/region-app.js'),
          ]);
          const cohort = await loadRegionCohort(dataDir, {
            atlas: atlasSource(dataDir, o), mode: o.registration, onRefused: (_id, message) => local.log.warn(`left out: ${message}`),
          });
          local.log.info(`ASPECTS features of ${cohort.count} volumes ready for the external command`);
          return renderFeaturesFile(cohort.samples);
        })();
        rendered.catch(() => (rendered = undefined));
        const { writeFile } = await import('node:fs/promises');
        const file = `${workDir}/features.safetensors`;
        await writeFile(file, await rendered);
        return { FEDGIT_FEATURES: file };
      };
    },
  });
}

function app(id: string): AppDefinition<unknown> {
  const definition = APPS.get(id);
  if (!definition) throw new UnknownComponent('app', id, [...APPS.keys()]);
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
          ...(definition.commandInputs ? { prepareInputs: definition.commandInputs(options, local) } : {}),
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
