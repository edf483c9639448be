/**
 * YAML parsed once at the boundary and checked against a zod schema; every
 * error names the file, the line and the field.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { FedgitError } from '../errors.js';

export type Located = { file: string; line?: number; field?: string };
type ErrorFactory = (message: string, where: Located) => FedgitError;

const MAX_YAML_BYTES = 1024 * 1024;

export type ParsedYaml = { readonly value: unknown; readonly document: Document; readonly lines: LineCounter; readonly file: string };

export function parseYamlText(text: string, file: string, fail: ErrorFactory): ParsedYaml {
  if (text.length > MAX_YAML_BYTES) throw fail(`${file}: ${text.length} bytes is larger than the ${MAX_YAML_BYTES}-byte limit for a config file`, { file });
  const lines = new LineCounter();
  // Aliases are refused outright: a "billion laughs" document expands a few lines into gigabytes.
  const document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problem = document.errors[0];
  if (problem) {
    const line = problem.linePos?.[0]?.line ?? lines.linePos(problem.pos[0]).line;
    throw fail(`${file}${line ? `:${line}` : ''}: invalid YAML: ${problem.message.split('\n')[0]}`, { file, ...(line ? { line } : {}) });
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 0 });
  } catch (e) {
    throw fail(`${file}: invalid YAML: ${(e as Error).message}`, { file });
  }
  return { value, document, lines, file };
}

export async function readYamlFile(file: string, fail: ErrorFactory): Promise<ParsedYaml> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw fail(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  return parseYamlText(text, file, fail);
}

/** The line of the node at `path`, or of its nearest existing parent. */
export function lineOf(parsed: ParsedYaml, path: ReadonlyArray<PropertyKey>): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = parsed.document.getIn(path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range) return parsed.lines.linePos(node.range[0]).line;
  }
  return undefined;
}

export function fieldName(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('') || '(top level)';
}

/** Validates against `schema`; the first issue becomes an error naming file, line and field. */
export function validate<S extends z.ZodType>(parsed: ParsedYaml, schema: S, fail: ErrorFactory, prefix: ReadonlyArray<PropertyKey> = [], value?: unknown): z.output<S> {
  const input = value !== undefined ? value : prefix.length ? toJs(parsed.document.getIn(prefix as unknown[])) : parsed.value;
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = [...prefix, ...issue.path];
  // An unknown key is reported at its own line, not at the line of the mapping that holds it.
  const line = lineOf(parsed, issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...path, issue.keys[0]] : path);
  const field = fieldName(path);
  const message = issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}` : issue.message;
  throw fail(`${parsed.file}${line ? `:${line}` : ''}: ${field}: ${message}`, { file: parsed.file, ...(line ? { line } : {}), field });
}

function toJs(value: unknown): unknown {
  return value && typeof value === 'object' && 'toJSON' in value ? (value as { toJSON(): unknown }).toJSON() : value;
}
