/** The training plan: one YAML file, committed to the plan repository; its commit id is the experiment id. */
import { z } from 'zod';
import { PlanInvalid } from '../errors.js';
import { readFile } from 'node:fs/promises';
import { parseYamlText, validate, lineOf, fieldName, type ParsedYaml } from '../config/yaml-file.js';
import type { AppRegistry, StrategyRegistry } from '../contracts.js';
import { parsePublicKey } from '../trust/keys.js';
import { Name } from '../config/names.js';
import { privacyPlanSchema } from '../privacy/plan-schema.js';
import { secureAggregationIssues, secureAggregationPlanSchema } from '../secagg/plan-schema.js';
import { parseAgreementKey } from '../secagg/agreement-keys.js';

/**
 * Strategies a DP merge can stand for: their merge is an average, which the DP merge replaces by
 * its clipped, fixed-denominator, noised average. The robust rules (median, trimmed-mean, krum,
 * multi-krum) pick or drop updates by their content, so one hospital can move their output by
 * more than clipNorm/n and the Gaussian accounting does not hold; the server optimisers would only
 * post-process the noised average, but their stored weights then hide the noise from the seedless
 * audit, which is not built for them yet.
 */
export const DP_STRATEGIES: readonly string[] = ['fedavg', 'fedprox'];


const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_DEADLINE_MS = 30 * UNIT_MS.d!;

/** `90s`, `10m`, `2h`, `1d`, or a number of seconds. */
export const Duration = z
  .union([z.number().positive(), z.string().regex(DURATION, "must be a duration such as '90s', '10m' or '2h'")])
  .transform((v) => (typeof v === 'number' ? v * 1000 : Number(DURATION.exec(v)![1]) * UNIT_MS[DURATION.exec(v)![2]!]!))
  .refine((ms) => ms <= MAX_DEADLINE_MS, 'must be at most 30 days');

const PublicKey = z.string().refine((text) => {
  try {
    parsePublicKey(text);
    return true;
  } catch {
    return false;
  }
}, "must be an Ed25519 public key 'ed25519:<base64>' as printed by fedgit keygen");

const AgreementKey = z.string().refine((text) => {
  try {
    parseAgreementKey(text);
    return true;
  } catch {
    return false;
  }
}, "must be an X25519 public key 'x25519:<base64>' as printed by fedgit keygen --agreement-out");

const Edge = z
  .union([Name, z.strictObject({
    name: Name,
    publicKey: PublicKey.optional(),
    /** The edge's X25519 key for secure aggregation's pairwise masks (operator/secagg/). */
    agreementKey: AgreementKey.optional(),
    /** Claims of more training samples than this count as this many in a merge (operator/reconcile/influence.ts). */
    maxDatasetSize: z.number().int().min(1).max(1_000_000_000).optional(),
  })])
  .transform((e): { name: string; publicKey?: string; agreementKey?: string; maxDatasetSize?: number } => (typeof e === 'string' ? { name: e } : e));

export const PlanSchema = z
  .strictObject({
    name: Name,
    rounds: z.number().int().min(1).max(10_000),
    epochsPerRound: z.number().int().min(1).max(1_000).default(1),
    edges: z.array(Edge).min(1).max(1_000),
    roundDeadline: Duration.prefault(3_600),
    minEdges: z.number().int().min(1).optional(),
    /** `fedavg`, or `{ id, options }` for a strategy that takes options (aggregator-app/registry.ts). */
    strategy: z.union([z.string().min(1), z.strictObject({ id: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) })]).default('fedavg'),
    /**
     * Update-norm clipping before any strategy (operator/reconcile/merge.ts): an update whose delta
     * from the previous global model is longer than `maxNorm` (L2 over every tensor) is scaled down to it.
     */
    clip: z.strictObject({ maxNorm: z.number().positive().max(1e12) }).optional(),
    /** The largest share of one edge in a merge, e.g. 0.5 (operator/reconcile/influence.ts). */
    maxShare: z.number().gt(0).max(1).optional(),
    app: z.strictObject({ id: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }),
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(0),
    aggregator: z.strictObject({ publicKey: PublicKey }).optional(),
    /** Client-level DP-FedAvg (docs/privacy.md): clipping, fixed denominator, Gaussian noise, the RDP accountant's budget. */
    privacy: privacyPlanSchema.optional(),
    /**
     * Checkpoints through Git LFS (docs/lfs.md): `true` for every one, or `{ minBytes }` for those
     * of at least that size. Commits then hold LFS pointer files; the objects go through the server's LFS batch API.
     */
    lfs: z.union([z.boolean(), z.strictObject({ minBytes: z.number().int().min(0).max(2 ** 50) })]).optional(),
    /** Secure aggregation (docs/secure-aggregation.md): edges push masked fixed-point updates whose masks cancel in the sum. */
    secureAggregation: secureAggregationPlanSchema.optional(),
    pretrained: z
      .string()
      .regex(/^(?!.*\.\.)(?![/.])[\w./-]{1,200}$/, 'must be a commit id or a ref of the global repository')
      .optional(),
  })
  .superRefine((plan, ctx) => {
    const seen = new Set<string>();
    const keyOwner = new Map<string, string>();
    if (plan.aggregator) keyOwner.set(plan.aggregator.publicKey, 'the aggregator');
    plan.edges.forEach((e, i) => {
      if (seen.has(e.name)) ctx.addIssue({ code: 'custom', path: ['edges', i], message: `duplicate edge name '${e.name}'` });
      seen.add(e.name);
      // One key for two participants would let either sign as the other.
      const owner = e.publicKey ? keyOwner.get(e.publicKey) : undefined;
      if (owner) ctx.addIssue({ code: 'custom', path: ['edges', i, 'publicKey'], message: `is the same key as ${owner}'s: every participant needs its own key` });
      if (e.publicKey && !owner) keyOwner.set(e.publicKey, `edge '${e.name}'`);
    });
    const keyed = plan.edges.filter((e) => e.publicKey).length;
    if (keyed > 0 && keyed < plan.edges.length) {
      plan.edges.forEach((e, i) => {
        if (!e.publicKey) ctx.addIssue({ code: 'custom', path: ['edges', i], message: `edge '${e.name}' has no publicKey while others have one: a signed plan needs a key for every edge` });
      });
    }
    if (plan.minEdges !== undefined && plan.minEdges > plan.edges.length) {
      ctx.addIssue({ code: 'custom', path: ['minEdges'], message: `is ${plan.minEdges} but the plan has only ${plan.edges.length} edges` });
    }
    if (plan.privacy) privacyIssues(plan).forEach((issue) => ctx.addIssue({ code: 'custom', ...issue }));
    if (plan.secureAggregation) secureAggregationIssues(plan).forEach((issue) => ctx.addIssue({ code: 'custom', ...issue }));
  })
  .transform(({ strategy, lfs, ...plan }) => ({
    ...plan,
    lfs: lfs === true ? { minBytes: 0 } : lfs === false ? undefined : lfs,
    roundDeadlineMs: plan.roundDeadline,
    minEdges: plan.minEdges ?? plan.edges.length,
    strategy: typeof strategy === 'string' ? strategy : strategy.id,
    strategyOptions: typeof strategy === 'string' ? {} : strategy.options,
  }));

type PrivacyInput = {
  strategy: string | { id: string };
  clip?: { maxNorm: number } | undefined;
  maxShare?: number | undefined;
  privacy?: { clipNorm: number; samplingRate: number } | undefined;
};

/** What a privacy section cannot be combined with (each with the path of the offending field). */
function privacyIssues(plan: PrivacyInput): Array<{ path: PropertyKey[]; message: string }> {
  const privacy = plan.privacy!;
  const issues: Array<{ path: PropertyKey[]; message: string }> = [];
  const strategy = typeof plan.strategy === 'string' ? plan.strategy : plan.strategy.id;
  if (!DP_STRATEGIES.includes(strategy)) {
    const why = ['median', 'trimmed-mean', 'krum', 'multi-krum'].includes(strategy)
      ? 'a robust rule selects updates by their content, so one hospital can move its output by more than clipNorm/n and the Gaussian accounting does not hold'
      : 'its merge is not accounted by the DP merge yet (server optimisers: the seedless audit cannot separate their step from the noise)';
    issues.push({ path: ['strategy'], message: `${strategy} cannot be combined with privacy: ${why}; use ${DP_STRATEGIES.join(' or ')}` });
  }
  if (plan.clip && plan.clip.maxNorm !== privacy.clipNorm) {
    issues.push({ path: ['clip', 'maxNorm'], message: `is ${plan.clip.maxNorm} but privacy.clipNorm is ${privacy.clipNorm}: the DP merge clips at clipNorm (remove clip or make them equal)` });
  }
  if (plan.maxShare !== undefined) issues.push({ path: ['maxShare'], message: 'cannot be combined with privacy: the DP merge weighs every edge 1/n, whatever its dataset size' });
  if (privacy.samplingRate !== 1) {
    issues.push({ path: ['privacy', 'samplingRate'], message: 'must be 1: every merge names the edges it merged, so who took part is public and sampling amplification does not apply (docs/privacy.md)' });
  }
  return issues;
}

export type Plan = Omit<z.output<typeof PlanSchema>, 'roundDeadline'>;
/** A plan as committed: its id is the plan repository's commit id. */
export type CommittedPlan = { readonly id: string; readonly plan: Plan; readonly text: string };

const fail = (message: string, where: { file: string; line?: number; field?: string }) => new PlanInvalid(message, where);

function checkComponents(parsed: ParsedYaml, plan: Plan, apps: AppRegistry | undefined, strategies: StrategyRegistry | undefined): Plan {
  const at = (path: PropertyKey[], message: string) => {
    const line = lineOf(parsed, path);
    return fail(`${parsed.file}${line ? `:${line}` : ''}: ${fieldName(path)}: ${message}`, { file: parsed.file, ...(line ? { line } : {}), field: fieldName(path) });
  };
  if (strategies) plan = checkStrategy(parsed, plan, strategies, at);
  if (!apps) return plan;
  if (!apps.ids().includes(plan.app.id)) throw at(['app', 'id'], `unknown app '${plan.app.id}' (known: ${apps.ids().join(', ')})`);
  const options = validate(parsed, apps.optionsSchema(plan.app.id), fail, ['app', 'options'], plan.app.options);
  return { ...plan, app: { id: plan.app.id, options: options as Record<string, unknown> } };
}

function checkStrategy(parsed: ParsedYaml, plan: Plan, strategies: StrategyRegistry, at: (path: PropertyKey[], message: string) => PlanInvalid): Plan {
  const spelledAsObject = typeof parsed.value === 'object' && parsed.value !== null && typeof (parsed.value as { strategy?: unknown }).strategy === 'object';
  const path = spelledAsObject ? ['strategy', 'id'] : ['strategy'];
  if (!strategies.ids().includes(plan.strategy)) throw at(path, `unknown strategy '${plan.strategy}' (known: ${strategies.ids().join(', ')})`);
  const options = validate(parsed, strategies.optionsSchema(plan.strategy), fail, ['strategy', 'options'], plan.strategyOptions) as Record<string, unknown>;
  const problem = strategies.planProblem(plan.strategy, options, plan.edges.length);
  if (problem) throw at(path, problem);
  if (plan.maxShare !== undefined && !strategies.weighsByDatasetSize(plan.strategy)) throw at(['maxShare'], `bounds FedAvg's dataset-size weights; ${plan.strategy} does not weigh by dataset size (remove maxShare)`);
  return { ...plan, strategyOptions: options };
}

export type PlanChecks = { apps?: AppRegistry; strategies?: StrategyRegistry };

export function parsePlan(text: string, file: string, checks: PlanChecks = {}): Plan {
  const parsed = parseYamlText(text, file, fail);
  const { roundDeadline: _, ...plan } = validate(parsed, PlanSchema, fail);
  return checkComponents(parsed, plan, checks.apps, checks.strategies);
}

/** Reads and checks a plan file; the text is kept verbatim, since it is what gets committed. */
export async function readPlanFile(file: string, checks: PlanChecks = {}): Promise<{ plan: Plan; text: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new PlanInvalid(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  let text: string;
  try {
    // Fatal decoding: a lenient one would replace bad bytes and commit a plan that differs from the file.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PlanInvalid(`${file}: not valid UTF-8 text`, { file });
  }
  return { plan: parsePlan(text, file, checks), text };
}
