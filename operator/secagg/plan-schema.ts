/**
 * The `secureAggregation` section of a plan (docs/secure-aggregation.md) and what it cannot be
 * combined with. Each refusal names the offending field, so the plan error reads
 * `plan.yaml:<line>: <field>: …` like every other.
 */
import { z } from 'zod';

export const secureAggregationPlanSchema = z.strictObject({
  /** f: values are encoded as round(v · 2^f); the merge is exact to 2^-(f+1) per edge in n·Δ units. */
  fractionalBits: z.number().int().min(0).max(40).default(20),
});

export type SecureAggregationPlan = z.infer<typeof secureAggregationPlanSchema>;

/** Strategies whose merge needs only the dataset-size-weighted average of the updates, which is all the aggregator learns. */
export const SECURE_STRATEGIES: readonly string[] = ['fedavg', 'fedprox', 'fedavgm', 'fedadagrad', 'fedadam', 'fedyogi'];

type Issue = { path: PropertyKey[]; message: string };
type SecurePlanInput = {
  strategy: string | { id: string };
  edges: ReadonlyArray<{ name: string; agreementKey?: string | undefined }>;
  minEdges?: number | undefined;
  clip?: unknown;
  maxShare?: number | undefined;
  privacy?: unknown;
};

/** Why the plan's other fields rule secure aggregation out (each with its path), empty when they do not. */
export function secureAggregationIssues(plan: SecurePlanInput): Issue[] {
  const issues: Issue[] = [];
  const strategy = typeof plan.strategy === 'string' ? plan.strategy : plan.strategy.id;
  if (!SECURE_STRATEGIES.includes(strategy)) {
    issues.push({ path: ['strategy'], message: `${strategy} cannot be combined with secureAggregation: it needs every individual update, and the aggregator sees only their sum; use ${SECURE_STRATEGIES.join(', ')}` });
  }
  if (plan.clip !== undefined) issues.push({ path: ['clip'], message: 'cannot be combined with secureAggregation: clipping needs each update\'s own norm, and the aggregator sees only the sum' });
  if (plan.maxShare !== undefined) issues.push({ path: ['maxShare'], message: 'cannot be combined with secureAggregation: capping shares moves weight between edges after the fact, and each edge weighs its own update before masking (maxDatasetSize works)' });
  if (plan.privacy !== undefined) issues.push({ path: ['privacy'], message: 'cannot be combined with secureAggregation yet: DP-FedAvg clips each update at the aggregator, which sees only the sum (docs/secure-aggregation.md)' });
  if (plan.edges.length < 2) issues.push({ path: ['edges'], message: 'secureAggregation needs at least 2 edges: the sum of one update is that update' });
  else if ((plan.minEdges ?? plan.edges.length) < 2) issues.push({ path: ['minEdges'], message: 'must be at least 2 with secureAggregation: a merge of one update would unmask it' });
  const seen = new Map<string, string>();
  plan.edges.forEach((e, i) => {
    if (!e.agreementKey) issues.push({ path: ['edges', i], message: `edge '${e.name}' has no agreementKey: secureAggregation needs an X25519 key for every edge (fedgit keygen --agreement-out)` });
    else if (seen.has(e.agreementKey)) issues.push({ path: ['edges', i, 'agreementKey'], message: `is the same key as edge '${seen.get(e.agreementKey)}' has: every edge needs its own` });
    else seen.set(e.agreementKey, e.name);
  });
  return issues;
}
