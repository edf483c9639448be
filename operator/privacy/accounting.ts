/**
 * What a DP merge records about the privacy spent, recomputable from the plan and the round alone
 * (the aggregator writes it, `fedgit audit` recomputes it, `fedgit log` shows it).
 */
import { nextRoundFits, privacySpentAfter } from './rdp-accountant.js';
import type { PrivacyPlan } from './plan-schema.js';

export const SIGNIFICANT_DIGITS = 6;

/** The shortest decimal with `digits` significant digits that is ≥ x: a commit never claims less than was spent. */
export function roundUpSignificant(x: number, digits = SIGNIFICANT_DIGITS): string {
  if (x === 0) return '0';
  let text = x.toPrecision(digits);
  if (Number(text) < x) {
    const step = 10 ** (Math.floor(Math.log10(Number(text))) - (digits - 1));
    text = (Number(text) + step).toPrecision(digits);
  }
  return String(Number(text));
}

export type PrivacyTrailerValues = { readonly epsilon: string; readonly delta: string; readonly accountant: string };

/** ε spent after `round` rounds (rounded up), δ, and the accountant's description. */
export function privacyTrailerValues(privacy: PrivacyPlan, round: number): PrivacyTrailerValues {
  const spent = privacySpentAfter(round, privacy.delta, privacy.noiseMultiplier, privacy.samplingRate, { conversion: privacy.conversion });
  return {
    epsilon: roundUpSignificant(spent.epsilon),
    delta: String(privacy.delta),
    accountant: `rdp ${privacy.conversion} z=${privacy.noiseMultiplier} q=${privacy.samplingRate} C=${privacy.clipNorm} orders=default`,
  };
}

/** Whether round `completedRounds + 1` stays within the plan's targetEpsilon. */
export function budgetAllowsRound(privacy: PrivacyPlan, completedRounds: number): boolean {
  return nextRoundFits(completedRounds, privacy.targetEpsilon, privacy.delta, privacy.noiseMultiplier, privacy.samplingRate, { conversion: privacy.conversion });
}
