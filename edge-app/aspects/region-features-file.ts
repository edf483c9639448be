/**
 * The features fedgit computed, as the file an external engine reads
 * (`FEDGIT_FEATURES`, edge-app/command/CONTRACT.md): safetensors with
 * `features` [N, 10, F] and `labels` [N, 10] (float32, CSV order), and in
 * `__metadata__` the sample ids (`fedgit.ids`, a JSON array: the split rule
 * sorts them), the symptomatic hemispheres (`fedgit.hemispheres`, a string of
 * L/R), `fedgit.features` (the preprocessing version) and
 * `fedgit.featureNames` (JSON). Pure.
 */
import { renderSafetensors } from '../../sdk/index.js';
import type { Tensor } from '../../sdk/index.js';
import { FEATURES_VERSION, type RegionSample } from '../preprocess/region-cohort.js';
import { FEATURE_COUNT, FEATURE_NAMES, REGION_COUNT } from '../preprocess/region-features.js';
import { REGION_ARCHITECTURE } from './region-spec.js';

export const FEATURES_FILE = 'features.safetensors';

export function renderFeaturesFile(samples: readonly RegionSample[]): Buffer {
  const n = samples.length;
  const features = new Float32Array(n * REGION_COUNT * FEATURE_COUNT);
  const labels = new Float32Array(n * REGION_COUNT);
  samples.forEach((s, i) => {
    features.set(s.input, i * REGION_COUNT * FEATURE_COUNT);
    labels.set(Array.from(s.labels), i * REGION_COUNT);
  });
  const tensors = new Map<string, Tensor>([
    ['features', { shape: [n, REGION_COUNT, FEATURE_COUNT], data: features }],
    ['labels', { shape: [n, REGION_COUNT], data: labels }],
  ]);
  return renderSafetensors(tensors, {
    'fedgit.architecture': REGION_ARCHITECTURE,
    'fedgit.features': FEATURES_VERSION,
    'fedgit.featureNames': JSON.stringify(FEATURE_NAMES),
    'fedgit.ids': JSON.stringify(samples.map((s) => s.id)),
    'fedgit.hemispheres': samples.map((s) => s.hemisphere).join(''),
  });
}
