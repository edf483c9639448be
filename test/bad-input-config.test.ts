/**
 * A participant whose own config is wrong stops at once with a clear message naming the
 * thing at fault and a non-zero exit; nothing in git is lost or changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { tempDir, runCli } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { gitState, gitStateChanges, inProcessAggregator, Tally } from './helpers/chaos.js';
import { builtinRegistries } from '../bin/registries.js';

const aspectsPlan = `name: asp
rounds: 2
edges: [hospital-a]
seed: 1
app:
  id: aspects-cnn
  options: {}
`;

// One subtest per case (three at a time), so the runner names the config that did not stop clearly.
test('participant configs pointing at missing repositories or data, or malformed, stop with a clear message', { timeout: 300_000, concurrency: 3 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-bad-config-');
  const { repos } = await setUpFederation(dir, aspectsPlan);
  // Round 0 exists, so an edge has work to do at once.
  await inProcessAggregator(repos, {}, builtinRegistries).reconcile();
  const before = await gitState(repos);
  const missing = path.join(dir, 'no-such-folder');
  const config = async (name: string, yaml: string | Buffer) => {
    await writeFile(path.join(dir, name), yaml);
    return name;
  };
  /** [what, args, expected stderr] — each must exit non-zero within the time limit. */
  const cases: Array<[string, string[], RegExp]> = [
    ['edge: repositories root that does not exist', ['edge', '--name', 'hospital-a', '--repos', missing], /no git repository at .*no-such-folder/],
    ['aggregator: repositories root that does not exist', ['aggregator', '--repos', missing], /no git repository at .*no-such-folder/],
    ['edge config: repos root that does not exist', ['edge', '--config', await config('edge-missing-repos.yaml', `role: edge\nname: hospital-a\nrepos: { root: ${missing} }\n`)], /no git repository at .*no-such-folder/],
    ['edge config: explicit global repository missing', ['edge', '--config', await config('edge-missing-global.yaml', `role: edge\nname: hospital-a\nrepos: { plan: ${path.join(repos, 'plan.git')}, global: ${path.join(missing, 'global.git')}, edges: { hospital-a: ${path.join(repos, 'edge-hospital-a.git')} } }\n`)], /no-such-folder\/global\.git/],
    ['edge: --data folder that does not exist', ['edge', '--name', 'hospital-a', '--repos', repos, '--data', missing, '--exit-when-done'], /no-such-folder/],
    ['edge config: data folder that does not exist', ['edge', '--config', await config('edge-missing-data.yaml', `role: edge\nname: hospital-a\nrepos: { root: ${repos} }\ndata: ${missing}\n`), '--exit-when-done'], /no-such-folder/],
    ['config file that does not exist', ['edge', '--config', 'nope.yaml'], /nope\.yaml: cannot read: ENOENT/],
    ['config: unknown key', ['edge', '--config', await config('edge-unknown.yaml', `role: edge\nname: hospital-a\nrepos: { root: ${repos} }\ncolour: blue\n`)], /edge-unknown\.yaml:\d+: \(top level\): unknown field 'colour'/],
    ['config: name ../x', ['edge', '--config', await config('edge-traversal.yaml', `role: edge\nname: ../x\nrepos: { root: ${repos} }\n`)], /edge-traversal\.yaml:2: name: must be 1–63 lowercase/],
    ['command line: --name a/b', ['edge', '--name', 'a/b', '--repos', repos], /name: must be 1–63 lowercase/],
    ['config: an edge repository key with path traversal', ['aggregator', '--config', await config('agg-traversal.yaml', `role: aggregator\nrepos: { root: ${repos}, edges: { "../x": /tmp } }\n`)], /agg-traversal\.yaml:\d+: repos\.edges/],
    ['config: pollInterval 1e308', ['edge', '--config', await config('edge-poll.yaml', `role: edge\nname: hospital-a\nrepos: { root: ${repos} }\npollInterval: 1e308\n`)], /edge-poll\.yaml:4: pollInterval: /],
    ['config: role of the wrong type', ['edge', '--config', await config('edge-role.yaml', `role: [edge]\nname: hospital-a\nrepos: { root: ${repos} }\n`)], /edge-role\.yaml:1: role: /],
    ['config: an aggregator config given to fedgit edge', ['edge', '--config', await config('agg-as-edge.yaml', `role: aggregator\nrepos: { root: ${repos} }\n`)], /agg-as-edge\.yaml is a aggregator config; use fedgit aggregator/],
    ['config: a YAML alias bomb', ['edge', '--config', await config('edge-bomb.yaml', `role: edge\nname: hospital-a\nrepos: { root: ${repos} }\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n`)], /edge-bomb\.yaml.*(alias|invalid YAML)/i],
    ['config: 10 MB', ['edge', '--config', await config('edge-big.yaml', `role: edge\nname: hospital-a\nrepos: { root: ${repos} }\n# ${'x'.repeat(10 * 1024 * 1024)}\n`)], /edge-big\.yaml: \d+ bytes is larger than/],
    ['config: non-UTF-8 bytes', ['edge', '--config', await config('edge-latin1.yaml', Buffer.concat([Buffer.from('role: edge\nname: hospital-'), Buffer.from([0xe9]), Buffer.from(`\nrepos: { root: ${repos} }\n`)]))], /edge-latin1\.yaml:(2: name|.*UTF-8)/],
  ];
  const tally = new Tally();
  await Promise.all(cases.map(([what, args, expected]) => t.test(what, async () => {
    const result = await runCli(args, { cwd: dir, timeoutMs: 30_000 });
    tally.add('bad participant configs tried');
    const shown = `\n    stderr: ${result.stderr.trim().slice(0, 300)}\n    stdout: ${result.stdout.trim().split('\n').slice(-2).join(' | ').slice(0, 300)}`;
    assert.ok(result.code !== null, `still running after 30 s${shown}`);
    assert.notEqual(result.code, 0, `a non-zero exit${shown}`);
    assert.match(result.stderr, expected);
    assert.doesNotMatch(result.stderr, /unexpected error/);
    tally.add('stopped clearly');
  })));
  const changes = gitStateChanges(before, await gitState(repos));
  console.log(`bad-input-config: ${tally.get('bad participant configs tried')} bad participant configs tried, ${tally.get('stopped clearly')} stopped with a clear message and a non-zero exit, git changes: ${changes.length ? changes.join('; ') : 'none (nothing lost)'}`);
  assert.deepEqual(changes, [], 'nothing in git was lost or changed');
});
