/** Keys and plans for secure-aggregation tests. */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { renderAgreementKey } from '../../operator/secagg/agreement-keys.js';
import { decodeAt } from '../../operator/secagg/fixed-point.js';
import { coordinateLayout, joinWords } from '../../operator/secagg/masked-update.js';
import type { WordTensors } from '../../operator/checkpoint/safetensors.js';
import assert from 'node:assert/strict';
import type { Tensors, Update } from '../../operator/contracts.js';
import type { Repository } from '../../operator/git/repository.js';
import type { CommittedPlan } from '../../operator/plan/plan.js';
import { readGlobalHead, readWeights } from '../../operator/store/federation.js';
import { fedAvg } from '../../aggregator-app/fedavg.js';
import { auditCommit, renderAudit } from '../../operator/commands/audit.js';
import { builtinRegistries } from '../../bin/registries.js';
import { whereUnder } from './chaos.js';

/** The DER prefix of a PKCS#8 X25519 private key (RFC 8410), before its 32 raw bytes. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** A fixed X25519 key per name, so that a test's masks (and what it measures of them) are the same on every run. */
export function fixedAgreementKey(name: string): { privateKey: KeyObject; publicKey: string } {
  const raw = createHash('sha256').update(`fedgit test agreement key ${name}`).digest();
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: renderAgreementKey(privateKey) };
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) (mx += x[i]!), (my += y[i]!);
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx, dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** Correlation of what an edge pushed (each U64 read as a signed integer) with its true update (local − previous), over every coordinate. */
export function maskedCorrelation(pushed: WordTensors, local: Tensors, previous: Tensors): number {
  const { names, count } = coordinateLayout(previous);
  const words = joinWords(pushed, names, count);
  const truth = new Float64Array(count);
  let k = 0;
  for (const name of names) {
    const base = previous.get(name)!.data, data = local.get(name)!.data;
    for (let i = 0; i < base.length; i++) truth[k++] = data[i]! - base[i]!;
  }
  return pearson(Float64Array.from({ length: count }, (_, i) => decodeAt(words, i)), truth);
}

export function maxAbsDifference(x: Tensors, y: Tensors): number {
  let worst = 0;
  for (const [name, t] of x) t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - y.get(name)!.data[i]!))));
  return worst;
}

/**
 * After the aggregator merged `round`: the global head is that round, its weights are FedAvg of the
 * true updates within the fixed-point resolution (one rounding per edge), and the merge audits.
 * Returns the audit's rendering for further matches.
 */
export async function assertSecureMerge(o: { global: Repository; plan: CommittedPlan; repos: string; round: number; truths: readonly Update[]; previous: Tensors; fractionalBits: number }): Promise<string> {
  const merged = (await readGlobalHead(o.global, o.plan))!;
  assert.equal(merged.round, o.round);
  const total = o.truths.reduce((s, u) => s + u.datasetSize, 0);
  const difference = maxAbsDifference(await readWeights(o.global, merged.oid), fedAvg(o.truths, o.previous));
  assert.ok(difference <= (o.truths.length * 2 ** -(o.fractionalBits + 1)) / total + 2 ** -22, `round ${o.round}: secure merge differs from FedAvg by ${difference}`);
  const audit = await auditCommit(whereUnder(o.repos), builtinRegistries, merged.oid);
  assert.ok(audit.ok, renderAudit(audit));
  return renderAudit(audit);
}
