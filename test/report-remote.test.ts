/**
 * `fedgit serve` and `fedgit report` against repositories on a git server (the test server:
 * git http-backend behind nginx): a viewer with read access only follows a federation by
 * polling, and the report audits every merge over HTTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { tempDir, runCli, waitFor, exited, toyPlan } from './helpers/temp.js';
import { PASSWORDS, participantDir, publishPlan, serverFor, startFederation, baseUrl } from './helpers/remote-federation.js';
import { whereFrom } from '../operator/commands/locate.js';
import { startReportServer } from '../operator/report/serve.js';
import { createLogger } from '../operator/runtime/logging.js';
import { builtinRegistries } from '../bin/registries.js';

const get = (url: string) => new Promise<string>((resolve, reject) => {
  http.get(url, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve(body));
  }).on('error', reject);
});

test('serve follows a federation on a git server by polling; report audits every merge over HTTP', { timeout: 240_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-remote-');
  const server = await serverFor(t);
  const base = baseUrl(server);
  await publishPlan(server, dir, toyPlan({ rounds: 3, epochDelayMs: 300 }));
  const viewer = await participantDir(dir, 'viewer', 'edge', base);
  await writeFile(path.join(viewer, 'participant.yaml'), `role: edge\nname: hospital-b\nrepos: { root: '${base}' }\nauth: { tokenEnv: FEDGIT_VIEW_TOKEN }\ncache: cache\n`);
  process.env.FEDGIT_VIEW_TOKEN = PASSWORDS['hospital-b'];
  t.after(() => delete process.env.FEDGIT_VIEW_TOKEN);

  const where = await whereFrom({ config: path.join(viewer, 'participant.yaml') });
  const serve = await startReportServer({ where, registries: builtinRegistries, host: '127.0.0.1', port: 0, pollMs: 500, log: createLogger({ participant: 'serve', console: false }) });
  t.after(() => serve.close());

  const { procs } = await startFederation(dir, base);
  t.after(() => procs.forEach((p) => p.kill('SIGKILL')));
  const seen = new Set<string>();
  await waitFor('the served page showing the finished plan', async () => {
    const page = await get(serve.url);
    const rounds = /data-rounds-done="(\d+)"/.exec(page)?.[1];
    if (rounds) seen.add(rounds);
    return /3 of 3 rounds merged — finished/.test(page);
  }, 180_000, 200);
  console.log(`serve over HTTP saw rounds ${[...seen].sort().join(', ')} while the federation ran`);
  assert.ok(seen.size >= 2, 'the page changed while the federation ran');
  for (const p of procs) assert.equal(await exited(p), 0, p.output().slice(-2000));

  const out = path.join(dir, 'report.html');
  const cli = await runCli(['report', '--config', 'participant.yaml', '--out', out], { cwd: viewer, env: { FEDGIT_VIEW_TOKEN: PASSWORDS['hospital-b'] } });
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  const html = await readFile(out, 'utf8');
  assert.match(html, /all 4 global commits recomputed bit for bit/);
  assert.ok(!html.includes(PASSWORDS['hospital-b']), 'the token is not in the page');
});
