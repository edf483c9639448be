import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlan } from '../operator/plan/plan.js';
import { applyToGitea, renderSetup, setupPlan } from '../operator/commands/setup.js';

const plan = parsePlan('name: p\nrounds: 1\nedges: [hospital-a, hospital-b]\napp: { id: x }\n', 'p.yaml');

test('each edge writes only its own repository, only the aggregator writes the global one, everyone reads the plan', () => {
  const s = setupPlan(plan, 'fed');
  const writers = (repo: string) => s.grants.filter((g) => g.repo === repo && g.permission === 'write').map((g) => g.user);
  const readers = (repo: string) => s.grants.filter((g) => g.repo === repo).map((g) => g.user).sort();
  assert.deepEqual(writers('plan'), []);
  assert.deepEqual(readers('plan'), ['aggregator', 'hospital-a', 'hospital-b']);
  assert.deepEqual(writers('global'), ['aggregator']);
  assert.deepEqual(writers('edge-hospital-a'), ['hospital-a']);
  assert.deepEqual(readers('edge-hospital-a'), ['aggregator', 'hospital-a']);
  assert.deepEqual(s.hooks.filter((h) => h.participant === 'aggregator').map((h) => h.repo), ['plan', 'edge-hospital-a', 'edge-hospital-b']);
  assert.match(renderSetup(s, 'https://git.example.org/'), /https:\/\/git\.example\.org\/fed\/edge-hospital-b\.git/);
});

test('applying to Gitea makes the documented API calls in order and never sends the token anywhere but the header', async () => {
  const calls: Array<{ method: string; url: string; body: unknown; auth: string | null }> = [];
  const fakeFetch = (async (url: string, init: RequestInit) => {
    calls.push({ method: String(init.method), url, body: init.body ? JSON.parse(String(init.body)) : undefined, auth: new Headers(init.headers).get('authorization') });
    const status = init.method === 'POST' && url.endsWith('/admin/users') && (JSON.parse(String(init.body)) as { username: string }).username === 'aggregator' ? 422 : init.method === 'POST' ? 201 : 204;
    return new Response(status === 204 ? null : '{}', { status });
  }) as unknown as typeof fetch;
  const lines: string[] = [];
  const { passwords } = await applyToGitea(setupPlan(plan, 'fed'), { baseUrl: 'https://git.example.org', adminToken: 'adm1n', webhookUrls: { aggregator: 'https://agg.example.org/hooks' }, webhookSecret: 's3cret', fetch: fakeFetch, say: (l) => lines.push(l) });
  assert.deepEqual(Object.keys(passwords), ['hospital-a', 'hospital-b'], 'existing users are kept');
  assert.ok(calls.every((c) => c.auth === 'token adm1n' && !c.url.includes('adm1n')));
  assert.ok(calls.some((c) => c.method === 'PUT' && c.url.endsWith('/repos/fed/global/collaborators/aggregator') && (c.body as { permission: string }).permission === 'write'));
  const hooks = calls.filter((c) => c.url.endsWith('/hooks'));
  assert.equal(hooks.length, 3);
  const protections = calls.filter((c) => c.url.endsWith('/branch_protections'));
  assert.deepEqual(protections.map((c) => c.url.split('/repos/fed/')[1]), ['global/branch_protections', 'edge-hospital-a/branch_protections', 'edge-hospital-b/branch_protections']);
  assert.ok(protections.every((c) => (c.body as { rule_name: string; enable_force_push: boolean }).rule_name === '*' && (c.body as { enable_force_push: boolean }).enable_force_push === false));
  assert.ok(!lines.join('\n').includes('s3cret') && !lines.join('\n').includes('adm1n'));
});
