/**
 * Folder-level import rules (README, "How it works"), read from the TypeScript sources:
 * the operator imports no app and nothing above it; apps reach fedgit only through the SDK;
 * every import of a project module is a literal path the compiler sees; no cycles between folders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What each folder may import besides itself, node: modules and packages. */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  operator: [],
  sdk: ['operator'],
  'edge-app': ['sdk'],
  'aggregator-app': ['sdk'],
  experiment: ['operator', 'sdk', 'edge-app', 'aggregator-app'],
  bin: ['operator', 'sdk', 'edge-app', 'aggregator-app', 'experiment'],
};

/** The SDK re-exports exactly these operator modules. */
const SDK_SOURCES = ['operator/contracts.ts', 'operator/errors.ts', 'operator/checkpoint/safetensors.ts'];

/** Computed imports that name optional npm packages, never a project module. */
const COMPUTED_IMPORT_ALLOWED = new Set(['edge-app/tf-backend.ts']);

type Import = { file: string; specifier: string | null; text: string };

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

function importsOf(file: string): Import[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: Import[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*(['"])([^'"]+)\1/gm)) found.push({ file, specifier: m[2]!, text: m[0].trim() });
  for (const m of text.matchAll(/^\s*import\s*(['"])([^'"]+)\1/gm)) found.push({ file, specifier: m[2]!, text: m[0].trim() });
  for (const m of text.matchAll(/\bimport\(\s*([^)]*?)\s*\)/g)) {
    const literal = /^(['"])([^'"]+)\1$/.exec(m[1]!);
    found.push({ file, specifier: literal ? literal[2]! : null, text: m[0] });
  }
  return found;
}

/** The project file an import resolves to (relative to ROOT, .ts), or null for packages and node: modules. */
function target(i: Import): string | null {
  if (!i.specifier || !i.specifier.startsWith('.')) return null;
  return path.posix.normalize(path.posix.join(path.posix.dirname(i.file), i.specifier)).replace(/\.js$/, '.ts');
}

const folderOf = (file: string) => file.split('/')[0]!;

const FILES = Object.keys(MAY_IMPORT).flatMap(sourceFiles);
const IMPORTS = FILES.flatMap(importsOf);

for (const folder of Object.keys(MAY_IMPORT)) {
  test(`${folder}/ imports only ${MAY_IMPORT[folder]!.length ? MAY_IMPORT[folder]!.map((f) => `${f}/`).join(', ') : 'itself'} (and packages)`, () => {
    const wrong = IMPORTS.filter((i) => folderOf(i.file) === folder)
      .map((i) => ({ i, to: target(i) }))
      .filter(({ to }) => to !== null && folderOf(to) !== folder && !MAY_IMPORT[folder]!.includes(folderOf(to)))
      .map(({ i, to }) => `${i.file} → ${to}`);
    assert.deepEqual(wrong, []);
  });
}

test('the SDK re-exports only the contracts, the errors and the checkpoint codec', () => {
  const reached = IMPORTS.filter((i) => folderOf(i.file) === 'sdk').map(target).filter((t): t is string => t !== null && folderOf(t) === 'operator');
  assert.deepEqual([...new Set(reached)].sort(), [...SDK_SOURCES].sort());
});

test('every import of a project module is a literal path (no `as string`, no computed import)', () => {
  const computed = IMPORTS.filter((i) => i.specifier === null && !COMPUTED_IMPORT_ALLOWED.has(i.file)).map((i) => `${i.file}: ${i.text}`);
  assert.deepEqual(computed, []);
  const cast = FILES.filter((f) => /import\([^)]*\bas\s+string\s*\)/.test(readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(cast, []);
});

test('no cycles between folders', () => {
  const edges = new Map<string, Set<string>>();
  for (const i of IMPORTS) {
    const to = target(i);
    if (!to || folderOf(to) === folderOf(i.file)) continue;
    edges.set(folderOf(i.file), (edges.get(folderOf(i.file)) ?? new Set()).add(folderOf(to)));
  }
  const cycles: string[] = [];
  const visit = (folder: string, trail: string[]) => {
    if (trail.includes(folder)) return void cycles.push([...trail.slice(trail.indexOf(folder)), folder].join(' → '));
    for (const next of edges.get(folder) ?? []) visit(next, [...trail, folder]);
  };
  for (const folder of edges.keys()) visit(folder, []);
  assert.deepEqual(cycles, []);
});

test('the rules see the imports they check (the scanner is not blind)', () => {
  assert.ok(IMPORTS.some((i) => i.file === 'bin/fedgit.ts' && target(i) === 'operator/cli.ts'));
  assert.ok(IMPORTS.some((i) => i.file === 'bin/fedgit.ts' && target(i) === 'experiment/cli.ts'), 'the literal dynamic import of the experiment');
  assert.ok(IMPORTS.some((i) => i.file === 'aggregator-app/fedavg.ts' && target(i) === 'sdk/index.ts'));
  assert.ok(FILES.length > 100, `${FILES.length} files`);
});
