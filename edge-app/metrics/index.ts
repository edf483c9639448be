export { rocAuc } from './auc.js';
export {
  ASPECTS_DICHOTOMY,
  DEFAULT_THRESHOLD,
  LOSS_EPSILON,
  METRIC_REGIONS,
  aspectsAgreement,
  aspectsScore,
  computeAspectsMetrics,
  meanBce,
  toMetrics,
  type AspectsAgreement,
  type AspectsMetrics,
  type ClassMetrics,
  type RegionMetrics,
} from './aspects-metrics.js';
export { renderMetricsComparison, renderMetricsTable } from './report.js';
