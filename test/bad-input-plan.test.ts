/**
 * Malformed and hostile plan files: each is refused with one clear line naming the file
 * and the field (exit 3), and nothing in git is lost or changed — refs and object counts
 * of every repository are the same before and after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { tempDir, runCli, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { gitState, gitStateChanges, Tally } from './helpers/chaos.js';

const base = toyPlan();
const bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');

/** [what, file content, the one line expected on stderr] */
const CASES: Array<[string, string | Buffer, RegExp]> = [
  ['rounds of the wrong type', base.replace('rounds: 3', 'rounds: three'), /bad-\d+\.yaml:2: rounds: .*number/i],
  ['rounds: 1e308', base.replace('rounds: 3', 'rounds: 1e308'), /bad-\d+\.yaml:2: rounds: /],
  ['rounds: 99999999999', base.replace('rounds: 3', 'rounds: 99999999999'), /bad-\d+\.yaml:2: rounds: .*(10000|too big)/i],
  ['rounds: -1', base.replace('rounds: 3', 'rounds: -1'), /bad-\d+\.yaml:2: rounds: /],
  ['rounds: 2.5', base.replace('rounds: 3', 'rounds: 2.5'), /bad-\d+\.yaml:2: rounds: .*int/i],
  ['rounds: .nan', base.replace('rounds: 3', 'rounds: .nan'), /bad-\d+\.yaml:2: rounds: /],
  ['rounds as a list', base.replace('rounds: 3', 'rounds: [3]'), /bad-\d+\.yaml:2: rounds: /],
  ['epochsPerRound: 1e308', `${base}epochsPerRound: 1e308\n`, /bad-\d+\.yaml:\d+: epochsPerRound: /],
  ['seed: 99999999999999999999', base.replace('seed: 42', 'seed: 99999999999999999999'), /bad-\d+\.yaml:\d+: seed: /],
  ['minEdges: 1e308', base.replace('minEdges: 1', 'minEdges: 1e308'), /bad-\d+\.yaml:5: minEdges: /],
  ['roundDeadline: 1e308 seconds', base.replace('roundDeadline: 10m', 'roundDeadline: 1e308'), /bad-\d+\.yaml:4: roundDeadline: /],
  ['roundDeadline: 99999999999999d', base.replace('roundDeadline: 10m', 'roundDeadline: 99999999999999d'), /bad-\d+\.yaml:4: roundDeadline: .*30 days/],
  ['an unknown top-level key', base.replace('seed: 42', 'seed: 42\ncolour: blue'), /bad-\d+\.yaml:\d+: \(top level\): unknown field 'colour'/],
  ['an unknown key under app', base.replace('  id: linear-toy', '  id: linear-toy\n  version: 2'), /bad-\d+\.yaml:\d+: app: unknown field 'version'/],
  ['an unknown app option', base.replace('features: 8', 'features: 8\n    layers: 3'), /bad-\d+\.yaml:\d+: app\.options: unknown field 'layers'/],
  ['a duplicate key', base.replace('seed: 42', 'seed: 42\nseed: 43'), /bad-\d+\.yaml:\d+: invalid YAML: .*(unique|duplicate)/i],
  ['duplicate edge names', toyPlan({ edges: ['a', 'a'] }), /bad-\d+\.yaml:3: edges\[1\]: duplicate edge name 'a'/],
  ['edge name ../x', toyPlan({ edges: ['hospital-a', '../x'] }), /bad-\d+\.yaml:3: edges\[1\]: must be 1–63 lowercase/],
  ['edge name a/b', toyPlan({ edges: ['a/b', 'hospital-b'] }), /bad-\d+\.yaml:3: edges\[0\]: must be 1–63 lowercase/],
  ['edge name with a NUL', toyPlan({ edges: ['"a\\0b"', 'hospital-b'] }), /bad-\d+\.yaml:3: edges\[0\]: must be 1–63 lowercase/],
  ['edge name of 300 characters', toyPlan({ edges: ['a'.repeat(300), 'hospital-b'] }), /bad-\d+\.yaml:3: edges\[0\]: must be 1–63 lowercase/],
  ['plan name ../../etc', base.replace('name: toy', 'name: ../../etc'), /bad-\d+\.yaml:1: name: must be 1–63 lowercase/],
  ['plan name with a slash', base.replace('name: toy', 'name: a/b'), /bad-\d+\.yaml:1: name: must be 1–63 lowercase/],
  ['1001 edges', toyPlan({ edges: Array.from({ length: 1001 }, (_, i) => `e${i}`) }), /bad-\d+\.yaml:3: edges: /],
  ['pretrained ref with path traversal', `${base}pretrained: ../../../etc/passwd\n`, /bad-\d+\.yaml:\d+: pretrained: /],
  ['pretrained naming no commit of the global repository', `${base}pretrained: 0123456789abcdef0123456789abcdef01234567\n`, /bad-\d+\.yaml:\d+: pretrained: .*0123456789abcdef/],
  ['a YAML alias bomb', `${base}${bomb}\n`, /bad-\d+\.yaml:\d*:? ?invalid YAML|alias/i],
  ['a single alias', `${base.replace('seed: 42', 'seed: &s 42')}dataSeed: *s\n`, /bad-\d+\.yaml:\d*:? ?invalid YAML|alias/i],
  ['deep nesting', `${base.replace('features: 8', `features: ${'['.repeat(100_000)}${']'.repeat(100_000)}`)}`, /bad-\d+\.yaml:\d+: (invalid YAML|app\.options\.features)/],
  ['a 10 MB file', `${base}# ${'x'.repeat(10 * 1024 * 1024)}\n`, /bad-\d+\.yaml: \d+ bytes is larger than the \d+-byte limit/],
  ['non-UTF-8 bytes in a value', Buffer.concat([Buffer.from('name: to'), Buffer.from([0xff, 0xfe]), Buffer.from(base.slice('name: toy'.length))]), /bad-\d+\.yaml:(1: name: |.*UTF-8)/],
  ['non-UTF-8 bytes in a comment', Buffer.concat([Buffer.from('# caf'), Buffer.from([0xe9, 0xff]), Buffer.from('\n'), Buffer.from(base)]), /bad-\d+\.yaml.*UTF-8/],
  ['an empty file', '', /bad-\d+\.yaml.*(top level|expected object)/i],
  ['a scalar document', 'just a string\n', /bad-\d+\.yaml:1: \(top level\): /],
  ['a list document', '- name: toy\n- rounds: 3\n', /bad-\d+\.yaml:1: \(top level\): /],
  ['two documents', `${base}---\n${base}`, /bad-\d+\.yaml:\d+: invalid YAML/],
  ['an oversized app (800 GB of generated data per edge)', base.replace('features: 8', 'features: 100000').replace('samplesPerEdge: 100', 'samplesPerEdge: 1000000'), /bad-\d+\.yaml:\d+: app\.options/],
  ['a plan file that does not exist', Buffer.alloc(0), /does-not-exist\.yaml: cannot read: ENOENT/],
];

// One subtest per case (three at a time), so the runner names the plan that was not refused clearly.
test(`${CASES.length} malformed or hostile plans are refused with one clear line; git is untouched`, { timeout: 300_000, concurrency: 3 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-bad-plan-');
  const { repos } = await setUpFederation(dir, base);
  const before = await gitState(repos);
  const tally = new Tally();
  await Promise.all(CASES.map(([what, content, expected], i) => t.test(what, async () => {
    const file = what === 'a plan file that does not exist' ? 'does-not-exist.yaml' : `bad-${i}.yaml`;
    if (file !== 'does-not-exist.yaml') await writeFile(path.join(dir, file), content);
    const result = await runCli(['run', file, '--repos', repos, '--timeout', '20'], { cwd: dir, timeoutMs: 60_000 });
    tally.add('bad plans tried');
    const shown = `\n    stderr: ${result.stderr.trim().slice(0, 300)}\n    stdout: ${result.stdout.trim().slice(-300)}`;
    assert.equal(result.code, 3, `exit status${shown}`);
    assert.match(result.stderr, expected);
    assert.equal(result.stderr.trim().split('\n').length, 1, `one line on stderr${shown}`);
    assert.doesNotMatch(result.stderr, /unexpected error/);
    tally.add('refused clearly');
  })));
  const changes = gitStateChanges(before, await gitState(repos));
  console.log(`bad-input-plan: ${tally.get('bad plans tried')} bad plans tried, ${tally.get('refused clearly')} refused with one clear line and exit 3, git changes: ${changes.length ? changes.join('; ') : 'none (nothing lost)'}`);
  assert.deepEqual(changes, [], 'nothing in git was lost or changed');
});
