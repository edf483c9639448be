/**
 * Git LFS over the test git server (nginx + git http-backend, and the LFS API of
 * test/helpers/lfs-server.ts behind the same authentication), with the real `git lfs` client
 * (Debian git-lfs) as the referee: what fedgit pushes, `git clone` + `git lfs pull` retrieves
 * byte for byte; what `git lfs` pushes, fedgit reads; wrong credentials, a damaged object on
 * the server and a federation with `lfs: true` end to end, audited over HTTP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { startGitServer, type GitServer } from './helpers/git-server.js';
import { tempDir, runCli, toyPlan } from './helpers/temp.js';
import { PASSWORDS, baseUrl, participantDir, publishPlan, startFederation } from './helpers/remote-federation.js';
import { exited } from './helpers/temp.js';
import { createOpener } from '../operator/store/open-repository.js';
import { LfsClient, LfsDenied } from '../operator/remote/lfs-client.js';
import { CheckpointCorrupt, LfsObjectMissing } from '../operator/errors.js';
import { SILENT } from '../operator/runtime/silent-log.js';
import { HttpRequestFailed } from '../operator/remote/http-client.js';
import { parsePlan } from '../operator/plan/plan.js';
import { commitEdgeUpdate, readEdgeHistory } from '../operator/store/federation.js';
import { loadUpdate } from '../operator/store/load-update.js';
import { builtinRegistries } from '../bin/registries.js';

let server: GitServer;
let home: string;

const REPOS = { plan: { writers: ['admin'] }, global: { writers: ['aggregator'] }, 'edge-hospital-a': { writers: ['hospital-a'] }, 'edge-hospital-b': { writers: ['hospital-b'] } };

before(async () => {
  server = await startGitServer({ users: { ...PASSWORDS }, repos: REPOS, lfs: true });
  // Native git with git-lfs's filters installed in a HOME of its own (never the user's configuration).
  home = await mkdtemp(path.join(os.tmpdir(), 'fedgit-lfs-home-'));
  execFileSync('git', ['lfs', 'install', '--skip-repo'], { env: gitEnv(), stdio: 'pipe' });
});
after(async () => {
  await server.stop();
  await rm(home, { recursive: true, force: true });
});

function gitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@x', ...extra };
}
const gitIn = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env: gitEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const author = { name: 'fedgit t', email: 't@fedgit.invalid', timestamp: 1_700_000_000 };

/** The aggregator's view of the global repository on the server (a fresh mirror under `dir`). */
async function openGlobal(dir: string, token: string = PASSWORDS.aggregator) {
  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token } });
  return open.require(server.url('global'), 'the global repository');
}

test('what fedgit pushes through LFS, `git clone` + `git lfs pull` retrieve byte for byte', async (t) => {
  const dir = await tempDir(t);
  const repo = await openGlobal(dir);
  await repo.refresh();
  const weights = randomBytes(3 * 1024 * 1024);
  const ref = 'refs/heads/lfs-from-fedgit';
  const commit = await repo.writeCommit({ files: { 'weights.safetensors': weights }, parents: [], message: 'fedgit push\n', author, lfs: { minBytes: 0 } });
  await repo.updateRef(ref, commit, null);

  const oid = sha256(weights);
  assert.ok((await readFile(server.lfsObject('global', oid))).equals(weights), 'the object reached the server before anyone reads the ref');
  const work = path.join(dir, 'clone');
  execFileSync('git', ['clone', '-q', '-b', 'lfs-from-fedgit', server.url('global', 'hospital-a'), work], { env: gitEnv({ GIT_LFS_SKIP_SMUDGE: '1' }), stdio: 'pipe' });
  assert.match(await readFile(path.join(work, 'weights.safetensors'), 'utf8'), new RegExp(`^version https://git-lfs.github.com/spec/v1\\noid sha256:${oid}\\nsize ${weights.length}\\n$`));
  gitIn(work, 'lfs', 'pull');
  assert.ok((await readFile(path.join(work, 'weights.safetensors'))).equals(weights), 'git lfs pull gives the bytes fedgit committed');
  assert.match(gitIn(work, 'lfs', 'fsck'), /Git LFS fsck OK/);
  assert.ok(server.lfsRequests().some((r) => r.user === 'aggregator' && r.method === 'PUT' && r.status === 200));
});

test('what `git lfs` pushes, fedgit reads (downloaded into its mirror, verified)', async (t) => {
  const dir = await tempDir(t);
  const work = path.join(dir, 'work');
  execFileSync('git', ['clone', '-q', server.url('edge-hospital-b', 'hospital-b'), work], { env: gitEnv(), stdio: 'pipe' });
  const weights = randomBytes(2 * 1024 * 1024 + 5);
  gitIn(work, 'checkout', '-q', '-b', 'from-git-lfs');
  gitIn(work, 'lfs', 'track', '*.safetensors');
  gitIn(work, 'config', 'lfs.locksverify', 'false');
  await writeFile(path.join(work, 'weights.safetensors'), weights);
  gitIn(work, 'add', '.gitattributes', 'weights.safetensors');
  gitIn(work, 'commit', '-q', '-m', 'weights through git lfs');
  gitIn(work, 'push', '-q', 'origin', 'from-git-lfs');
  const commit = gitIn(work, 'rev-parse', 'HEAD').trim();

  const open = createOpener({ cacheDir: path.join(dir, 'cache'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } });
  const repo = await open.require(server.url('edge-hospital-b'), 'the edge repository');
  await repo.refresh();
  assert.ok((await repo.readFile(commit, 'weights.safetensors')).equals(weights));
  const oid = sha256(weights);
  assert.ok((await readFile(path.join(repo.gitdir, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid))).equals(weights), 'kept in the mirror\'s lfs/objects');
});

test('a wrong token is refused with a clear error that does not carry the token; so is an upload to another\'s repository', async (t) => {
  const dir = await tempDir(t);
  const weights = randomBytes(1000);
  const repo = await openGlobal(dir);
  const gitdir = repo.gitdir;
  await repo.writeCommit({ files: { 'weights.safetensors': weights }, parents: [], message: 'x\n', author, lfs: { minBytes: 0 } });
  const wrong = 'not-the-token-zq81';
  const client = new LfsClient(server.url('global'), { username: 'aggregator', token: wrong }, SILENT);
  const pointer = { oid: sha256(weights), size: weights.length };
  await assert.rejects(client.upload(gitdir, [pointer], 'refs/heads/x'), (e: Error) => e instanceof LfsDenied && /global\.git\/info\/lfs: the Git LFS server refused access \(HTTP 401\); check this participant's user and token/.test(e.message) && !e.message.includes(wrong) && !JSON.stringify(e).includes(wrong));
  const hospital = new LfsClient(server.url('global'), { username: 'hospital-a', token: PASSWORDS['hospital-a'] }, SILENT);
  await assert.rejects(hospital.upload(gitdir, [pointer], 'refs/heads/x'), (e: Error) => e instanceof LfsDenied && /HTTP 403/.test(e.message) && !e.message.includes(PASSWORDS['hospital-a']));
  await assert.rejects(readFile(server.lfsObject('global', pointer.oid)), { code: 'ENOENT' }, 'nothing reached the server');
});

test('an object damaged on the server is refused and not kept; the ref that names it is still read, its weights are not', async (t) => {
  const dir = await tempDir(t);
  const writer = await openGlobal(dir);
  await writer.refresh();
  const weights = randomBytes(1024 * 1024);
  const commit = await writer.writeCommit({ files: { 'weights.safetensors': weights }, parents: [], message: 'to be damaged\n', author, lfs: { minBytes: 0 } });
  await writer.updateRef('refs/heads/lfs-damaged', commit, null);
  const oid = sha256(weights);
  const file = server.lfsObject('global', oid);
  const damaged = Buffer.from(weights);
  damaged[1000] = damaged[1000]! ^ 0xff;
  await chmod(file, 0o644);
  await writeFile(file, damaged);

  const reader = await openGlobal(path.join(dir, 'reader'));
  await reader.refresh();
  assert.equal(await reader.readRef('refs/heads/lfs-damaged'), commit);
  await assert.rejects(reader.readFile(commit, 'weights.safetensors'), (e: Error) => e instanceof CheckpointCorrupt && /LFS object [0-9a-f]{64} from http:\/\/127\.0\.0\.1:\d+\/global\.git\/info\/lfs\/objects\/[0-9a-f]{64} does not hash to its name/.test(e.message));
  const kept = await readdir(path.join(reader.gitdir, 'lfs'), { recursive: true }).catch(() => []);
  assert.deepEqual(kept.filter((f) => f.endsWith(oid)), [], 'the damaged bytes are not in the mirror');
});

test('an object pruned from the server (retention) is reported as such; the commit, its pointer and trailers stay readable', async (t) => {
  const dir = await tempDir(t);
  const writer = await openGlobal(dir);
  await writer.refresh();
  const weights = randomBytes(4096);
  const commit = await writer.writeCommit({ files: { 'weights.safetensors': weights }, parents: [], message: 'old round\n\nFedgit-Round: 1\n', author, lfs: { minBytes: 0 } });
  await writer.updateRef('refs/heads/lfs-pruned', commit, null);
  await rm(server.lfsObject('global', sha256(weights)));

  const reader = await openGlobal(path.join(dir, 'reader'));
  await reader.refresh();
  assert.deepEqual((await reader.readCommit(commit)).trailers, [['Fedgit-Round', '1']]);
  await assert.rejects(reader.readFile(commit, 'weights.safetensors'), (e: Error) => e instanceof LfsObjectMissing && new RegExp(`LFS object ${sha256(weights)} is not on http://127\\.0\\.0\\.1:\\d+/global\\.git/info/lfs \\(Object does not exist\\); a retention policy may have pruned it`).test(e.message));
});

test('an update whose object cannot be fetched while the server is down is not refused: the merge waits and reads it later', async (t) => {
  const dir = await tempDir(t);
  const yaml = `${toyPlan({ name: 'lfsdown', rounds: 1 })}lfs: true\n`;
  const plan = { id: 'a'.repeat(40), text: yaml, plan: parsePlan(yaml, 'plan.yaml', { apps: builtinRegistries.apps }) };
  const { app } = plan.plan;
  const spec = builtinRegistries.apps.tensorSpec(app.id, app.options);
  const edgeOpen = createOpener({ cacheDir: path.join(dir, 'edge'), auth: { username: 'hospital-a', token: PASSWORDS['hospital-a'] } });
  const edgeRepo = await edgeOpen.require(server.url('edge-hospital-a'), 'the edge repository');
  await edgeRepo.refresh();
  const tensors = await builtinRegistries.apps.initialWeights(app.id, app.options, 7);
  await commitEdgeUpdate(edgeRepo, { plan, edge: 'hospital-a', round: 1, base: 'b'.repeat(40), architecture: 'x', tensors, datasetSize: 10, metrics: { global: {}, local: {} } });

  const aggregator = await createOpener({ cacheDir: path.join(dir, 'aggregator'), auth: { username: 'aggregator', token: PASSWORDS.aggregator } }).require(server.url('edge-hospital-a'), 'the edge repository');
  await aggregator.refresh();
  const [record] = await readEdgeHistory(aggregator, plan);
  await server.stopTemporarily();
  try {
    await assert.rejects(loadUpdate(aggregator, plan, record!, spec), (e: Error) => e instanceof HttpRequestFailed && /ECONNREFUSED/.test(e.message));
  } finally {
    await server.restart();
  }
  const loaded = await loadUpdate(aggregator, plan, record!, spec);
  assert.ok(loaded.ok, loaded.ok ? '' : loaded.reason);
});

test('a federation over HTTP with `lfs: true` pushes pointers and objects, and audits over HTTP from a fresh machine', async (t) => {
  const dir = await tempDir(t);
  await mkdir(dir, { recursive: true });
  const base = baseUrl(server);
  await publishPlan(server, dir, `${toyPlan({ name: 'lfsfed', rounds: 2, minEdges: 2 })}lfs: true\n`);
  const { homes, procs } = await startFederation(dir, base);
  t.after(() => procs.forEach((p) => p.kill('SIGKILL')));
  for (const p of procs) assert.equal(await exited(p), 0, p.output().slice(-3000));

  const tag = execFileSync('git', ['--git-dir', server.gitdir('global'), 'tag', '-l', 'inference-lfsfed-*'], { encoding: 'utf8' }).trim();
  for (const repo of ['global', 'edge-hospital-a', 'edge-hospital-b']) {
    const branch = execFileSync('git', ['--git-dir', server.gitdir(repo), 'for-each-ref', '--format=%(refname)', 'refs/heads/fedgit/lfsfed-*'], { encoding: 'utf8' }).trim();
    assert.match(execFileSync('git', ['--git-dir', server.gitdir(repo), 'show', `${branch}:weights.safetensors`], { encoding: 'utf8' }), /^version https:\/\/git-lfs\.github\.com\/spec\/v1\n/, `${repo}: the commit holds a pointer`);
    // Every object every commit names is on the server, intact (git lfs checks the server's store).
    assert.match(execFileSync('git', ['--git-dir', server.gitdir(repo), 'lfs', 'fsck', branch], { encoding: 'utf8', env: gitEnv() }), /Git LFS fsck OK/, repo);
    execFileSync('git', ['--git-dir', server.gitdir(repo), 'fsck', '--strict'], { stdio: 'pipe' });
  }
  for (const [name, h] of Object.entries(homes)) {
    const log = await readFile(path.join(h, 'logs', `${name}.jsonl`), 'utf8');
    assert.ok(!log.includes(PASSWORDS[name as keyof typeof PASSWORDS]), `${name}'s token never reaches its log`);
  }
  const auditor = await participantDir(dir, 'auditor', 'edge', base);
  await writeFile(path.join(auditor, 'participant.yaml'), `role: edge\nname: hospital-b\nrepos: { root: '${base}' }\nauth: { tokenEnv: FEDGIT_TOKEN }\n`);
  const audit = await runCli(['audit', tag, '--config', 'participant.yaml'], { cwd: auditor, env: { FEDGIT_TOKEN: PASSWORDS['hospital-b'] } });
  assert.equal(audit.code, 0, audit.stdout + audit.stderr);
  assert.match(audit.stdout, /audit passed/);
  const log = await runCli(['log', '--config', 'participant.yaml'], { cwd: auditor, env: { FEDGIT_TOKEN: PASSWORDS['hospital-b'] } });
  assert.equal(log.code, 0, log.stdout + log.stderr);
  assert.match(log.stdout, /lfsfed .*2\/2 rounds/);
});
