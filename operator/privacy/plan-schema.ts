/**
 * The `privacy` section of a plan for client-level DP-FedAvg (McMahan et al., ICLR 2018), as a
 * zod schema, part of the plan (operator/plan/plan.ts). A section is refused when its budget does
 * not allow even one round.
 */
import { z } from 'zod';
import { roundsWithin } from './rdp-accountant.js';

/** zod runs refinements even after a field failed its own check; the accountant then must not run. */
function isAccountable(p: { targetEpsilon: number; delta: number; noiseMultiplier: number; samplingRate: number; conversion: string }): boolean {
  const finite = [p.targetEpsilon, p.delta, p.noiseMultiplier, p.samplingRate].every((v) => typeof v === 'number' && Number.isFinite(v));
  return finite && p.targetEpsilon > 0 && p.delta > 0 && p.delta < 1 && p.noiseMultiplier > 0 && p.samplingRate > 0 && p.samplingRate <= 1 &&
    (p.conversion === 'balle2020' || p.conversion === 'mironov2017');
}

export const privacyPlanSchema = z
  .strictObject({
    /** The budget: the federation stops, tagged, before a round that would take ε(δ) past this. */
    targetEpsilon: z.number().positive().max(1e6),
    /** δ of the (ε, δ) guarantee; conventionally well below 1 / (number of hospitals). */
    delta: z.number().gt(0).lt(1),
    /** z: the noise added to the sum of clipped updates has standard deviation z · clipNorm. */
    noiseMultiplier: z.number().positive().max(1e6),
    /** C: every client's update (delta from the base model) is scaled down to L2 norm ≤ C. */
    clipNorm: z.number().positive().max(1e12),
    /** q: each client takes part in a round with probability q (Poisson sampling); 1 = every client, every round. */
    samplingRate: z.number().gt(0).max(1).default(1),
    /** RDP → (ε, δ) conversion; see rdp-accountant.ts. */
    conversion: z.enum(['balle2020', 'mironov2017']).default('balle2020'),
  })
  .superRefine((p, ctx) => {
    if (!isAccountable(p)) return; // the field checks above have reported it
    const rounds = roundsWithin(p.targetEpsilon, p.delta, p.noiseMultiplier, p.samplingRate, { conversion: p.conversion });
    if (rounds < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['targetEpsilon'],
        message: `a single round with noiseMultiplier ${p.noiseMultiplier} and samplingRate ${p.samplingRate} already exceeds ε = ${p.targetEpsilon} at δ = ${p.delta}`,
      });
    }
  });

export type PrivacyPlan = z.infer<typeof privacyPlanSchema>;
