/** A participant's own config (never committed): who it is, where the repositories and its data are, how it runs the model. */
import path from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigInvalid } from '../errors.js';
import { readYamlFile, validate } from './yaml-file.js';
import { Duration } from '../plan/plan.js';
import { EnvVarName, Name } from './names.js';
import { reposUnder, reposAtUrl, type RepoLocations } from '../store/federation.js';
import { isRemoteLocation } from '../store/open-repository.js';
import type { Engine } from '../contracts.js';

const Location = z.string().min(1).max(4096);

const EngineSchema = z.union([
  z.literal('builtin').transform((): Engine => ({ kind: 'builtin' })),
  z
    .strictObject({
      command: z.array(z.string().min(1)).min(1),
      timeout: Duration.optional(),
      retries: z.number().int().min(0).max(100).default(1),
      env: z.record(EnvVarName, z.string()).optional(),
    })
    .transform((c): Engine => ({ kind: 'command', command: c.command, retries: c.retries, ...(c.timeout !== undefined ? { timeoutMs: c.timeout } : {}), ...(c.env ? { env: c.env } : {}) })),
]);

const Auth = z
  .strictObject({
    username: z.string().min(1).max(256).optional(),
    tokenEnv: EnvVarName.optional(),
    tokenFile: Location.optional(),
  })
  .refine((a) => (a.tokenEnv === undefined) !== (a.tokenFile === undefined), 'give exactly one of tokenEnv or tokenFile (the token itself never goes in this file)');

const Webhook = z.strictObject({
  listen: z.string().regex(/^[\w.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "must be host:port, e.g. '127.0.0.1:9000'"),
  path: z.string().regex(/^\/[\w./-]*$/).default('/hooks'),
  secretEnv: EnvVarName,
});

const Repos = z.strictObject({
  root: Location.optional(),
  plan: Location.optional(),
  global: Location.optional(),
  edges: z.record(Name, Location).optional(),
});

/** Fields every participant has. */
const Common = {
  repos: Repos,
  logs: Location.optional(),
  pollInterval: Duration.prefault(1),
  auth: Auth.optional(),
  /** Where mirrors of repositories on a git server are kept. */
  cache: Location.optional(),
  webhook: Webhook.optional(),
  /** This participant's private signing key (fedgit keygen). */
  key: Location.optional(),
};

export const ParticipantSchema = z.discriminatedUnion('role', [
  z.strictObject({
    role: z.literal('aggregator'),
    name: Name.default('aggregator'),
    /** The DP noise secret (32 bytes, mode 0600, created at the first DP merge); default under $XDG_STATE_HOME/fedgit/. */
    noiseSecret: Location.optional(),
    ...Common,
  }),
  z.strictObject({
    role: z.literal('edge'),
    name: Name,
    data: Location.optional(),
    engine: EngineSchema.default({ kind: 'builtin' }),
    /** This edge's X25519 private key for secure aggregation (fedgit keygen --agreement-out). */
    agreementKey: Location.optional(),
    ...Common,
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
  const abs = (p: string | undefined) => (p === undefined ? undefined : isRemoteLocation(p) ? p : path.resolve(dir, p));
  const { repos, pollInterval, ...rest } = parsed;
  if (!repos.root && !(repos.plan && repos.global)) {
    throw new ConfigInvalid(`${file}: repos: give 'root' (the folder holding plan.git, global.git and edge-<name>.git) or both 'plan' and 'global'`, { file, field: 'repos' });
  }
  const located: Array<[string, string | undefined]> = [['repos.root', repos.root], ['repos.plan', repos.plan], ['repos.global', repos.global], ...Object.entries(repos.edges ?? {}).map(([k, v]): [string, string] => [`repos.edges.${k}`, v])];
  for (const [field, location] of located) {
    if (location && hasCredentials(location)) {
      throw new ConfigInvalid(`${file}: ${field}: the URL carries a user name or token; a token never goes in this file (use auth.tokenEnv or auth.tokenFile)`, { file, field });
    }
  }
  const locate = (edges: readonly string[]): RepoLocations => {
    const root = abs(repos.root) ?? dir;
    const conventional = isRemoteLocation(root) ? reposAtUrl(root, edges) : reposUnder(root, edges);
    const explicitEdges = Object.fromEntries(Object.entries(repos.edges ?? {}).map(([k, v]) => [k, abs(v)!]));
    return {
      plan: abs(repos.plan) ?? conventional.plan,
      global: abs(repos.global) ?? conventional.global,
      edges: { ...(repos.root ? conventional.edges : {}), ...explicitEdges },
    };
  };
  const paths = { logs: abs(rest.logs), key: abs(rest.key), cache: abs(rest.cache) ?? path.join(dir, '.fedgit-cache', rest.name), ...(rest.role === 'edge' ? { data: abs(rest.data), agreementKey: abs(rest.agreementKey) } : { noiseSecret: abs(rest.noiseSecret) }) };
  return { ...rest, ...paths, file, pollIntervalMs: pollInterval, locate } as ParticipantConfig;
}

function hasCredentials(location: string): boolean {
  if (!isRemoteLocation(location)) return false;
  try {
    const url = new URL(location);
    return url.username !== '' || url.password !== '';
  } catch {
    return /\/\/[^/]*@/.test(location);
  }
}

export async function readParticipantConfig(file: string): Promise<ParticipantConfig> {
  const fail = (message: string, where: { file: string; line?: number; field?: string }) => new ConfigInvalid(message, where);
  const parsed = await readYamlFile(file, fail);
  return resolveParticipant(validate(parsed, ParticipantSchema, fail), file);
}

/** The token for the git server, from the environment variable or file the config names; never from the YAML. */
export async function readToken(config: ParticipantConfig): Promise<{ username: string; token: string } | undefined> {
  const auth = config.auth;
  if (!auth) return undefined;
  const username = auth.username ?? config.name;
  if (auth.tokenEnv) {
    const token = process.env[auth.tokenEnv];
    if (!token) throw new ConfigInvalid(`${config.file}: auth.tokenEnv: environment variable ${auth.tokenEnv} is not set`, { file: config.file, field: 'auth.tokenEnv' });
    return { username, token };
  }
  const file = path.resolve(path.dirname(config.file), auth.tokenFile!);
  let token: string;
  try {
    // A token file others can read is a leaked token: refused, as private key files are.
    const mode = (await stat(file)).mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new ConfigInvalid(`${config.file}: auth.tokenFile: ${file} has mode 0${mode.toString(8).padStart(3, '0')}: a token must not be accessible to group or others; run \`chmod 600 ${file}\``, { file: config.file, field: 'auth.tokenFile' });
    }
    token = (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if (e instanceof ConfigInvalid) throw e;
    throw new ConfigInvalid(`${config.file}: auth.tokenFile: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file: config.file, field: 'auth.tokenFile' });
  }
  if (!token) throw new ConfigInvalid(`${config.file}: auth.tokenFile: ${file} is empty`, { file: config.file, field: 'auth.tokenFile' });
  return { username, token };
}

export function readWebhookSecret(config: ParticipantConfig): string | undefined {
  if (!config.webhook) return undefined;
  const secret = process.env[config.webhook.secretEnv];
  if (!secret) throw new ConfigInvalid(`${config.file}: webhook.secretEnv: environment variable ${config.webhook.secretEnv} is not set`, { file: config.file, field: 'webhook.secretEnv' });
  return secret;
}
