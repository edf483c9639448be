/**
 * A federation over the test git server: the server with one user per participant, the plan
 * committed with plain git, and each participant a process in its own folder with its own token.
 */
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { startCli } from './temp.js';
import { startGitServer, type GitServer } from './git-server.js';

export const PASSWORDS = { admin: 'admin-pw', aggregator: 'agg-pw', 'hospital-a': 'a-pw', 'hospital-b': 'b-pw' } as const;
export type Participant = 'aggregator' | 'hospital-a' | 'hospital-b';
export const PARTICIPANTS: readonly Participant[] = ['aggregator', 'hospital-a', 'hospital-b'];

export async function serverFor(t: { after: (fn: () => Promise<void>) => void }): Promise<GitServer> {
  const server = await startGitServer({
    users: { ...PASSWORDS },
    repos: { plan: { writers: ['admin'] }, global: { writers: ['aggregator'] }, 'edge-hospital-a': { writers: ['hospital-a'] }, 'edge-hospital-b': { writers: ['hospital-b'] } },
  });
  t.after(() => server.stop());
  return server;
}

/** Where participants find the repositories: the server's URL without `/plan.git`. */
export const baseUrl = (server: GitServer): string => server.url('plan').replace(/\/plan\.git$/, '');

/** The consortium commits the plan with plain git, as any GitOps change. */
export async function publishPlan(server: GitServer, dir: string, yaml: string): Promise<void> {
  const work = path.join(dir, 'plan-work');
  const gitc = (...args: string[]) => execFileSync('git', ['-C', work, '-c', 'user.name=admin', '-c', 'user.email=admin@example.org', ...args], { stdio: 'pipe' });
  execFileSync('git', ['clone', '-q', server.url('plan', 'admin'), work], { stdio: 'pipe' });
  await writeFile(path.join(work, 'plan.yaml'), yaml);
  gitc('add', 'plan.yaml');
  gitc('commit', '-q', '-m', 'Plan');
  gitc('push', '-q', 'origin', 'HEAD:refs/heads/main');
}

/** A participant's own folder with its config (token from FEDGIT_TOKEN, logs, 250 ms polling). */
export async function participantDir(dir: string, name: string, role: 'aggregator' | 'edge', base: string, extra = ''): Promise<string> {
  const home = path.join(dir, name);
  await mkdir(home, { recursive: true });
  await writeFile(path.join(home, 'participant.yaml'), `role: ${role}\nname: ${name}\nrepos: { root: '${base}' }\nauth: { tokenEnv: FEDGIT_TOKEN }\nlogs: logs\npollInterval: 250ms\n${extra}`);
  return home;
}

export const roleOf = (name: Participant): 'aggregator' | 'edge' => (name === 'aggregator' ? 'aggregator' : 'edge');

export const startParticipant = (home: string, name: Participant) =>
  startCli([roleOf(name), '--config', 'participant.yaml', '--exit-when-done'], { cwd: home, env: { FEDGIT_TOKEN: PASSWORDS[name] } });

/** The aggregator and two edges, each a process in its own folder with its own credentials. */
export async function startFederation(dir: string, base: string) {
  const homes = Object.fromEntries(await Promise.all(PARTICIPANTS.map(async (n) => [n, await participantDir(dir, n, roleOf(n), base)] as const))) as Record<Participant, string>;
  const procs = PARTICIPANTS.map((n) => startParticipant(homes[n], n));
  return { homes, procs };
}
