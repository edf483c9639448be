/**
 * `fedgit setup`: what a plan needs on a git server — repositories, users,
 * permissions and webhooks — printed for any server, or applied to Gitea
 * through its REST API with an admin token.
 */
import { randomBytes } from 'node:crypto';
import { SetupFailed } from '../errors.js';
import { REPO_DIRS } from '../git/names.js';
import type { Plan } from '../plan/plan.js';

export type Permission = 'read' | 'write';
export type SetupPlan = {
  readonly owner: string;
  readonly repos: ReadonlyArray<{ name: string; description: string }>;
  readonly users: readonly string[];
  readonly grants: ReadonlyArray<{ repo: string; user: string; permission: Permission }>;
  /** Which participant's endpoint each repository notifies on push. */
  readonly hooks: ReadonlyArray<{ repo: string; participant: string }>;
};

const strip = (name: string) => name.replace(/\.git$/, '');

/** Pure: each edge writes only its own repository, only the aggregator writes the global one, everyone reads the plan. */
export function setupPlan(plan: Plan, owner: string): SetupPlan {
  const edges = plan.edges.map((e) => e.name);
  const planRepo = strip(REPO_DIRS.plan);
  const globalRepo = strip(REPO_DIRS.global);
  const edgeRepo = (e: string) => strip(REPO_DIRS.edge(e));
  const users = ['aggregator', ...edges];
  return {
    owner,
    repos: [
      { name: planRepo, description: `fedgit plan ${plan.name}: plan.yaml` },
      { name: globalRepo, description: `fedgit plan ${plan.name}: global models, written by the aggregator` },
      ...edges.map((e) => ({ name: edgeRepo(e), description: `fedgit plan ${plan.name}: local models of ${e}` })),
    ],
    users,
    grants: [
      ...users.map((user) => ({ repo: planRepo, user, permission: 'read' as const })),
      { repo: globalRepo, user: 'aggregator', permission: 'write' },
      ...edges.map((e) => ({ repo: globalRepo, user: e, permission: 'read' as const })),
      ...edges.flatMap((e) => [
        { repo: edgeRepo(e), user: e, permission: 'write' as const },
        { repo: edgeRepo(e), user: 'aggregator', permission: 'read' as const },
      ]),
    ],
    hooks: [
      ...users.map((participant) => ({ repo: planRepo, participant })),
      ...edges.map((participant) => ({ repo: globalRepo, participant })),
      ...edges.map((e) => ({ repo: edgeRepo(e), participant: 'aggregator' })),
    ],
  };
}

export function renderSetup(s: SetupPlan, baseUrl: string): string {
  const url = (repo: string) => `${baseUrl.replace(/\/+$/, '')}/${s.owner}/${repo}.git`;
  const lines = [`Repositories (owner ${s.owner}):`, ...s.repos.map((r) => `  ${url(r.name)}  — ${r.description}`), '', 'Users (one per participant, each with its own token):', ...s.users.map((u) => `  ${u}`), '', 'Permissions:'];
  for (const repo of s.repos) {
    const grants = s.grants.filter((g) => g.repo === repo.name);
    lines.push(`  ${repo.name}: write ${grants.filter((g) => g.permission === 'write').map((g) => g.user).join(', ') || '(nobody: commit plans as the owner)'}; read ${grants.filter((g) => g.permission === 'read').map((g) => g.user).join(', ')}`);
  }
  lines.push('', 'Webhooks (push events, signed with each participant\'s webhook secret):');
  for (const h of s.hooks) lines.push(`  ${h.repo} → ${h.participant}'s endpoint (participant config webhook.listen/path)`);
  lines.push('', 'Servers must refuse non-fast-forward pushes and branch deletions in the global and edge repositories');
  lines.push('(git config receive.denyNonFastForwards true and receive.denyDeletes true; on Gitea a protected-branch rule \'*\' that');
  lines.push('allows push but not force push, which also forbids deleting): fedgit relies on the first as compare-and-swap, and');
  lines.push('`fedgit audit` on the second, since it finds every merged update in the edge that pushed it.');
  return lines.join('\n');
}

type GiteaOptions = {
  readonly baseUrl: string;
  readonly adminToken: string;
  /** participant → webhook URL; repositories whose participant has none get no hook. */
  readonly webhookUrls: Readonly<Record<string, string>>;
  readonly webhookSecret?: string;
  readonly fetch?: typeof fetch;
  readonly say: (line: string) => void;
};

/** Applies a setup plan through Gitea's API (idempotent: existing users, repositories and hooks are kept). */
export async function applyToGitea(s: SetupPlan, o: GiteaOptions): Promise<{ passwords: Record<string, string> }> {
  const call = o.fetch ?? fetch;
  const api = async (method: string, path: string, body?: unknown, okIfExists = false) => {
    const response = await call(`${o.baseUrl.replace(/\/+$/, '')}/api/v1${path}`, {
      method,
      headers: { authorization: `token ${o.adminToken}`, 'content-type': 'application/json', accept: 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (response.ok || (okIfExists && (response.status === 409 || response.status === 422))) return response;
    throw new SetupFailed(`Gitea ${method} ${path}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`, { status: response.status });
  };
  const passwords: Record<string, string> = {};
  for (const user of s.users) {
    const password = randomBytes(18).toString('base64url');
    const r = await api('POST', '/admin/users', { username: user, email: `${user}@fedgit.invalid`, password, must_change_password: false }, true);
    if (r.status === 201) passwords[user] = password;
    o.say(`user ${user}: ${r.status === 201 ? 'created' : 'exists'}`);
  }
  for (const repo of s.repos) {
    const r = await api('POST', `/admin/users/${s.owner}/repos`, { name: repo.name, description: repo.description, private: true, auto_init: false }, true);
    o.say(`repository ${s.owner}/${repo.name}: ${r.status === 201 ? 'created' : 'exists'}`);
  }
  for (const g of s.grants) {
    await api('PUT', `/repos/${s.owner}/${g.repo}/collaborators/${g.user}`, { permission: g.permission });
    o.say(`${g.user} may ${g.permission} ${g.repo}`);
  }
  // History that audit reads must not be rewritten or deleted: protect every branch of the global and edge repositories.
  for (const repo of s.repos.filter((r) => r.name !== 'plan')) {
    await api('POST', `/repos/${s.owner}/${repo.name}/branch_protections`, { rule_name: '*', enable_push: true, enable_force_push: false }, true);
    o.say(`repository ${s.owner}/${repo.name}: branches protected (no force push, no deletion)`);
  }
  for (const h of s.hooks) {
    const target = o.webhookUrls[h.participant];
    if (!target) continue;
    await api('POST', `/repos/${s.owner}/${h.repo}/hooks`, { type: 'gitea', active: true, events: ['push'], config: { url: target, content_type: 'json', ...(o.webhookSecret ? { secret: o.webhookSecret } : {}) } });
    o.say(`webhook ${h.repo} → ${h.participant}`);
  }
  return { passwords };
}
