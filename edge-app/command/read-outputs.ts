/**
 * Checks what an external command left behind. Pure checks (`check*`) are kept
 * apart from the file reads (`read*`); every problem becomes one sentence that
 * the adapter wraps in AppFailed.
 */
import fs from 'node:fs/promises';
import { parseSafetensors } from '../../sdk/index.js';
import type { Metrics, TensorSpec, Tensors } from '../../sdk/index.js';

/** A problem with the command's outputs; the message is the reason shown to the user. */
export class OutputInvalid extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutputInvalid';
  }
}

async function readOptional(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export async function readOutputWeights(file: string, envName: string): Promise<Tensors> {
  const bytes = await readOptional(file);
  if (bytes === undefined) throw new OutputInvalid(`the command did not write the output weights ($${envName})`);
  if (bytes.length === 0) throw new OutputInvalid(`the output weights ($${envName}) are empty`);
  let tensors: Tensors;
  try {
    tensors = parseSafetensors(bytes, 'output weights').tensors;
  } catch (cause) {
    throw new OutputInvalid(`the output weights are not a valid float32 safetensors file: ${(cause as Error).message}`, { cause });
  }
  if (tensors.size === 0) throw new OutputInvalid('the output weights contain no tensors');
  checkFinite(tensors);
  return tensors;
}

/** Every value finite; names the first offending tensor and index. */
export function checkFinite(tensors: Tensors): void {
  for (const name of [...tensors.keys()].sort()) {
    const data = tensors.get(name)!.data;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (!Number.isFinite(v)) throw new OutputInvalid(`tensor ${name} contains ${v} at index ${i}`);
    }
  }
}

/** Same names and shapes as `expected` (a trained model must keep the architecture of the model it got). */
export function checkSameLayout(actual: Tensors, expected: Tensors): void {
  const missing = [...expected.keys()].filter((n) => !actual.has(n)).sort();
  const extra = [...actual.keys()].filter((n) => !expected.has(n)).sort();
  if (missing.length > 0 || extra.length > 0) {
    const parts = [];
    if (missing.length > 0) parts.push(`missing ${missing.join(', ')}`);
    if (extra.length > 0) parts.push(`unexpected ${extra.join(', ')}`);
    throw new OutputInvalid(`output tensor names differ from the expected ones: ${parts.join('; ')}`);
  }
  for (const [name, t] of expected) {
    const got = actual.get(name)!.shape;
    if (got.length !== t.shape.length || got.some((d, i) => d !== t.shape[i])) {
      throw new OutputInvalid(`tensor ${name} has shape [${got.join(', ')}], expected [${t.shape.join(', ')}]`);
    }
  }
}

/** Exactly the tensors of `spec`, with its shapes. */
export function checkSpec(actual: Tensors, spec: readonly TensorSpec[]): void {
  checkSameLayout(actual, new Map(spec.map((s) => [s.name, { shape: s.shape, data: new Float32Array(0) }])));
}

async function readJson(file: string, envName: string): Promise<unknown> {
  const bytes = await readOptional(file);
  if (bytes === undefined) throw new OutputInvalid(`the command did not write the metrics file ($${envName})`);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new OutputInvalid(`the metrics file ($${envName}) is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `proximalMu`: the FedProx μ the command says it applied (CONTRACT.md, "FedProx"), when it wrote one. */
export type TrainMetrics = { readonly datasetSize: number; readonly global: Metrics; readonly local: Metrics; readonly proximalMu?: number };

/** `{ "datasetSize": int > 0, "global": {...}, "local": {...}, "proximalMu"?: number ≥ 0 }`; global/local default to `{}`. */
export function parseTrainMetrics(json: unknown): TrainMetrics {
  if (!isObject(json)) throw new OutputInvalid('the metrics file must hold a JSON object');
  const { datasetSize, global, local, proximalMu } = json;
  if (datasetSize === undefined) throw new OutputInvalid('the metrics file has no datasetSize');
  if (typeof datasetSize !== 'number' || !Number.isSafeInteger(datasetSize) || datasetSize <= 0) {
    throw new OutputInvalid(`datasetSize must be a positive integer, got ${JSON.stringify(datasetSize)}`);
  }
  for (const [key, v] of [['global', global], ['local', local]] as const) {
    if (v !== undefined && !isObject(v)) throw new OutputInvalid(`metrics.${key} must be a JSON object`);
  }
  if (proximalMu !== undefined && !(typeof proximalMu === 'number' && proximalMu >= 0 && Number.isFinite(proximalMu))) {
    throw new OutputInvalid(`proximalMu must be a finite number ≥ 0, got ${JSON.stringify(proximalMu)}`);
  }
  return { datasetSize, global: (global ?? {}) as Metrics, local: (local ?? {}) as Metrics, ...(proximalMu !== undefined ? { proximalMu } : {}) };
}

export function parseEvaluateMetrics(json: unknown): Metrics {
  if (!isObject(json)) throw new OutputInvalid('the metrics file must hold a JSON object');
  return json as Metrics;
}

export async function readTrainMetrics(file: string, envName: string): Promise<TrainMetrics> {
  return parseTrainMetrics(await readJson(file, envName));
}

export async function readEvaluateMetrics(file: string, envName: string): Promise<Metrics> {
  return parseEvaluateMetrics(await readJson(file, envName));
}
