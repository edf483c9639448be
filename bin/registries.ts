/** The apps and aggregation strategies this build of fedgit ships, as the operator receives them. */
import { apps } from '../edge-app/registry.js';
import { strategies } from '../aggregator-app/registry.js';
import type { Registries } from '../operator/runtime/registries.js';

export const builtinRegistries: Registries = { apps, strategies };
