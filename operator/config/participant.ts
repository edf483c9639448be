/** A participant's own config (never committed): who it is, where the repositories and its data are, how it runs the model. */
import path from 'node:path';
import { z } from 'zod';
import { ConfigInvalid } from '../errors.js';
import { readYamlFile, validate } from './yaml-file.js';
import { Duration, NAME_PATTERN } from '../plan/plan.js';
import { reposUnder, type RepoLocations } from '../store/federation.js';
import type { Engine } from '../contracts.js';

const Name = z.string().regex(NAME_PATTERN, 'must be 1–63 lowercase letters, digits or dashes, starting with a letter or digit');
const Location = z.string().min(1).max(4096);

const EngineSchema = z.union([
  z.literal('builtin').transform((): Engine => ({ kind: 'builtin' })),
  z
    .strictObject({
      command: z.array(z.string().min(1)).min(1),
      timeout: Duration.optional(),
      retries: z.number().int().min(0).max(100).default(1),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
    })
    .transform((c): Engine => ({ kind: 'command', command: c.command, retries: c.retries, ...(c.timeout !== undefined ? { timeoutMs: c.timeout } : {}), ...(c.env ? { env: c.env } : {}) })),
]);

const Repos = z.strictObject({
  root: Location.optional(),
  plan: Location.optional(),
  global: Location.optional(),
  edges: z.record(Name, Location).optional(),
});

export const ParticipantSchema = z.discriminatedUnion('role', [
  z.strictObject({
    role: z.literal('aggregator'),
    name: Name.default('aggregator'),
    repos: Repos,
    logs: Location.optional(),
    pollInterval: Duration.default(1),
  }),
  z.strictObject({
    role: z.literal('edge'),
    name: Name,
    repos: Repos,
    data: Location.optional(),
    engine: EngineSchema.default({ kind: 'builtin' }),
    logs: Location.optional(),
    pollInterval: Duration.default(1),
  }),
]);

type Parsed = z.output<typeof ParticipantSchema>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type ParticipantConfig = DistributiveOmit<Parsed, 'repos' | 'pollInterval'> & {
  readonly file: string;
  readonly pollIntervalMs: number;
  /** Resolves repository locations for the edges of a plan. */
  readonly locate: (edges: readonly string[]) => RepoLocations;
};

export function resolveParticipant(parsed: Parsed, file: string): ParticipantConfig {
  const dir = path.dirname(path.resolve(file));
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(dir, p));
  const { repos, pollInterval, ...rest } = parsed;
  if (!repos.root && !(repos.plan && repos.global)) {
    throw new ConfigInvalid(`${file}: repos: give 'root' (the folder holding plan.git, global.git and edge-<name>.git) or both 'plan' and 'global'`, { file, field: 'repos' });
  }
  const locate = (edges: readonly string[]): RepoLocations => {
    const conventional = reposUnder(abs(repos.root) ?? dir, edges);
    const explicitEdges = Object.fromEntries(Object.entries(repos.edges ?? {}).map(([k, v]) => [k, abs(v)!]));
    return {
      plan: abs(repos.plan) ?? conventional.plan,
      global: abs(repos.global) ?? conventional.global,
      edges: { ...(repos.root ? conventional.edges : {}), ...explicitEdges },
    };
  };
  const paths = { logs: abs(rest.logs), ...(rest.role === 'edge' ? { data: abs(rest.data) } : {}) };
  return { ...rest, ...paths, file, pollIntervalMs: pollInterval, locate } as ParticipantConfig;
}

export async function readParticipantConfig(file: string): Promise<ParticipantConfig> {
  const fail = (message: string, where: { file: string; line?: number; field?: string }) => new ConfigInvalid(message, where);
  const parsed = await readYamlFile(file, fail);
  return resolveParticipant(validate(parsed, ParticipantSchema, fail), file);
}
