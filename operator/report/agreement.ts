/** Pure statistics the experiment section draws from per-scan predictions: ROC curves and Bland–Altman agreement. */

export type RocCurve = { readonly auc: number | null; readonly points: ReadonlyArray<readonly [fpr: number, tpr: number]> };

/** Most points a curve keeps: enough to draw, few enough for the page (corners are always kept). */
const MAX_ROC_POINTS = 300;

/**
 * The ROC curve of `scores` against 0/1 `labels`: one point per distinct threshold (ties move
 * together, diagonally), from (0, 0) to (1, 1); the area by the trapezoid rule over every point.
 */
export function rocCurve(scores: readonly number[], labels: readonly number[]): RocCurve {
  const positives = labels.filter((l) => l === 1).length;
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0) return { auc: null, points: [] };
  const order = scores.map((s, i) => [s, labels[i]!] as const).sort((a, b) => b[0] - a[0]);
  const points: Array<[number, number]> = [[0, 0]];
  let tp = 0, fp = 0, auc = 0;
  for (let i = 0; i < order.length;) {
    const score = order[i]![0];
    for (; i < order.length && order[i]![0] === score; i++) order[i]![1] === 1 ? tp++ : fp++;
    const [x0, y0] = points[points.length - 1]!;
    const point: [number, number] = [fp / negatives, tp / positives];
    auc += (point[0] - x0) * (point[1] + y0) / 2;
    points.push(point);
  }
  return { auc, points: thin(points) };
}

function thin(points: Array<[number, number]>): Array<[number, number]> {
  if (points.length <= MAX_ROC_POINTS) return points;
  const step = (points.length - 1) / (MAX_ROC_POINTS - 1);
  return Array.from({ length: MAX_ROC_POINTS }, (_, i) => points[Math.round(i * step)]!);
}

export type BlandAltman = {
  /** Mean of (predicted − true). */
  readonly bias: number;
  readonly sd: number;
  /** bias ± 1.96 sd. */
  readonly limits: readonly [number, number];
  /** Distinct (mean of the two scores, difference) pairs with how many scans share each. */
  readonly points: ReadonlyArray<{ readonly mean: number; readonly difference: number; readonly count: number }>;
};

/** Agreement of two measurements of the same scans (here: the ASPECTS score the model implies and the true one). */
export function blandAltman(truth: readonly number[], predicted: readonly number[]): BlandAltman | null {
  const n = Math.min(truth.length, predicted.length);
  if (n === 0) return null;
  const differences = Array.from({ length: n }, (_, i) => predicted[i]! - truth[i]!);
  const bias = differences.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(differences.reduce((a, d) => a + (d - bias) ** 2, 0) / (n - 1)) : 0;
  const counts = new Map<string, { mean: number; difference: number; count: number }>();
  for (let i = 0; i < n; i++) {
    const mean = (predicted[i]! + truth[i]!) / 2;
    const key = `${mean} ${differences[i]}`;
    const known = counts.get(key);
    if (known) known.count++;
    else counts.set(key, { mean, difference: differences[i]!, count: 1 });
  }
  return { bias, sd, limits: [bias - 1.96 * sd, bias + 1.96 * sd], points: [...counts.values()].sort((a, b) => a.mean - b.mean || a.difference - b.difference) };
}

/** ASPECTS: 10 minus the regions called affected. */
export const aspectsScoreOf = (affected: readonly boolean[]): number => affected.length - affected.filter(Boolean).length;
