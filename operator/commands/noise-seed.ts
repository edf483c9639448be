/**
 * `fedgit noise-seed --round N --out FILE`: the aggregator's operator reveals one round's DP noise
 * seed to an auditor, who then recomputes that merge bit for bit with `fedgit audit <commit>
 * --noise-seed-file FILE`. Only a merged round: a seed known before its merge would let an edge
 * shape its update to cancel the noise. The seed is checked against the merge's commitment before
 * it is written, written 0600 and never overwritten, and never printed.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NotFound, UsageError } from '../errors.js';
import { shortId } from '../git/names.js';
import type { CommittedPlan } from '../plan/plan.js';
import { deriveNoiseSeed, noiseCommitment } from '../privacy/gaussian-noise.js';
import { defaultNoiseSecretFile, NoiseSecretRefused, readNoiseSecret } from '../privacy/noise-secret.js';
import { readFinalTag, readGlobalHistory } from '../store/federation.js';
import type { GlobalRecord } from '../store/records.js';
import { isRemoteLocation } from '../store/open-repository.js';
import { openForReading, type Where } from './locate.js';

export type NoiseSeedRequest = {
  readonly where: Where;
  readonly plan: CommittedPlan;
  readonly round: number;
  /** The aggregator's secret; undefined: the aggregator's default file for this global repository. */
  readonly secretFile?: string;
  readonly out: string;
};

export type NoiseSeedWritten = { readonly file: string; readonly merge: GlobalRecord; readonly commitment: string };

/** The secret file the aggregator uses when its config names none (operator/reconcile/aggregator-operator.ts). */
export function aggregatorSecretFile(where: Where): string {
  const global = where.locate([]).global;
  return defaultNoiseSecretFile(isRemoteLocation(global) ? global : path.resolve(global));
}

/** The merge of `round` under `plan`, refusing a plan without privacy and a round not merged yet. */
async function mergedRound(where: Where, plan: CommittedPlan, round: number): Promise<GlobalRecord> {
  if (!Number.isSafeInteger(round) || round < 1) throw new UsageError(`noise-seed: --round takes a round number ≥ 1 (round 0 adds no noise), got '${round}'`);
  if (!plan.plan.privacy) throw new UsageError(`noise-seed: plan ${plan.plan.name} (${shortId(plan.id)}) has no privacy section: its merges add no noise`);
  if (round > plan.plan.rounds) throw new UsageError(`noise-seed: plan ${plan.plan.name} (${shortId(plan.id)}) has ${plan.plan.rounds} rounds, there is no round ${round}`);
  const global = await openForReading(where, where.locate([]).global, 'the global repository');
  const history = await readGlobalHistory(global, plan);
  const merge = history.find((r) => r.round === round);
  if (!merge) {
    const head = history.at(-1);
    if (head && (await readFinalTag(global, plan)) === head.oid) throw new NotFound(`noise-seed: plan ${plan.plan.name} (${shortId(plan.id)}) ended at round ${head.round} (tagged final, e.g. by its privacy budget): round ${round} was never merged`, { round });
    throw new NotFound(`noise-seed: round ${round} of plan ${plan.plan.name} (${shortId(plan.id)}) is not merged yet (the global head is ${head ? `round ${head.round}` : 'missing'}); a seed revealed before its merge would let an edge cancel the noise`, { round });
  }
  if (!merge.privacy?.noiseCommitment) throw new NotFound(`noise-seed: the merge of round ${round} (${shortId(merge.oid)}) commits to no noise seed`, { round });
  return merge;
}

export async function writeNoiseSeed(request: NoiseSeedRequest): Promise<NoiseSeedWritten> {
  const { where, plan, round, out } = request;
  const merge = await mergedRound(where, plan, round);
  const secretFile = request.secretFile ?? aggregatorSecretFile(where);
  const seed = deriveNoiseSeed(await readNoiseSecret(secretFile), plan.id, round);
  const commitment = noiseCommitment(seed);
  if (commitment !== merge.privacy!.noiseCommitment) {
    throw new NoiseSecretRefused(`noise-seed: the secret ${secretFile} does not give the seed the merge of round ${round} (${shortId(merge.oid)}) committed to: it is not this federation's aggregator secret`, secretFile);
  }
  const file = path.resolve(out);
  await writeFile(file, `${seed.toString('hex')}\n`, { flag: 'wx', mode: 0o600 }).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(e.code === 'EEXIST' ? `noise-seed: ${file} exists; a seed file is never overwritten` : `noise-seed: cannot write ${file}: ${e.code ?? 'error'}`);
  });
  return { file, merge, commitment };
}

export function renderNoiseSeedWritten({ file, merge, commitment }: NoiseSeedWritten): string {
  return [
    `wrote the noise seed of round ${merge.round} (merge ${shortId(merge.oid)}, commitment ${commitment}) to ${file} (mode 0600)`,
    `whoever holds it can subtract that round's noise: hand it only to the auditor, who runs`,
    `  fedgit audit ${merge.oid} --noise-seed-file ${file}`,
  ].join('\n');
}
