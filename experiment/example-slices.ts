/**
 * A few test scans as the model sees them, for the HTML report: each registered into MNI space
 * (the transform the preprocessing cached), resampled at 2 mm, cut through the ganglionic and
 * the supraganglionic ASPECTS level, windowed 0–80 HU, with the atlas's regions of the
 * symptomatic side as a label image, and every model's probability per region.
 */
import path from 'node:path';
import { builtinAtlas } from '../edge-app/atlas/load-atlas.js';
import { atlasLabel } from '../edge-app/atlas/aspects-atlas.js';
import type { RegionName } from '../edge-app/cohort/regions.js';
import { CACHE_FOLDER, readScan } from '../edge-app/intake/resolve-volume.js';
import { blockAverage, registerVolume, resampleToTemplate } from '../edge-app/registration/index.js';
import { FEATURE_GRID, labelsOnFeatureGrid } from '../edge-app/preprocess/feature-grid.js';
import { HU_WINDOW } from '../edge-app/preprocess/grid.js';
import { METRIC_REGIONS } from '../edge-app/metrics/index.js';
import type { ExperimentPredictions } from './predictions.js';

export type ExampleSlice = {
  /** Height of the slice in MNI space. */
  readonly zMm: number;
  readonly width: number;
  readonly height: number;
  readonly pixelMm: number;
  /** Radiological view (patient's right on the left, anterior up), row-major, base64 of uint8: 0 = 0 HU, 255 = 80 HU. */
  readonly image: string;
  /** Same layout: 0 outside, else 1 + the index in `regions` of the symptomatic side's region. */
  readonly regions: string;
};

export type ExampleScan = {
  readonly id: string;
  readonly hemisphere: 'L' | 'R';
  readonly slices: readonly ExampleSlice[];
};

/** Ganglionic regions (C, L, IC, I, M1–M3) and the cortex 2 cm above (M4–M6). */
const LEVELS: ReadonlyArray<readonly string[]> = [['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3'], ['M4', 'M5', 'M6']];

/** Up to `count` test scans with the most affected regions first (ties: CSV order). */
export function pickExamples(predictions: ExperimentPredictions, count: number): number[] {
  return predictions.scans
    .map((s, i) => [i, s.labels.reduce((a, b) => a + b, 0)] as const)
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, count)
    .map(([i]) => i);
}

export async function exampleSlices(folder: string, scans: ReadonlyArray<{ readonly id: string; readonly hemisphere: 'L' | 'R' }>): Promise<ExampleScan[]> {
  const atlas = builtinAtlas(2);
  const labels = labelsOnFeatureGrid(atlas.atlas);
  const [nx, ny, nz] = FEATURE_GRID.dims;
  const [lo, hi] = HU_WINDOW;
  const out: ExampleScan[] = [];
  for (const scan of scans) {
    const { volume } = await readScan(folder, scan.id);
    const registration = await registerVolume({ volume, template: atlas.template, atlas: atlas.atlas, mode: 'rigid', cacheDir: path.join(folder, CACHE_FOLDER, 'registration') });
    const hu = resampleToTemplate(blockAverage(volume, 2), registration.toTemplate, FEATURE_GRID);
    const regionOf = new Map(METRIC_REGIONS.map((r, i) => [atlasLabel(r as RegionName, scan.hemisphere), i + 1]));
    const slices: ExampleSlice[] = [];
    for (const level of LEVELS) {
      const wanted = new Set(level.map((r) => METRIC_REGIONS.indexOf(r as (typeof METRIC_REGIONS)[number]) + 1));
      // The axial slice that holds the most voxels of this level's regions.
      let bestK = 0, bestCount = -1;
      for (let k = 0; k < nz; k++) {
        let count = 0;
        for (let v = k * nx * ny; v < (k + 1) * nx * ny; v++) if (wanted.has(regionOf.get(labels[v]!) ?? 0)) count++;
        if (count > bestCount) [bestK, bestCount] = [k, count];
      }
      const image = Buffer.alloc(nx * ny);
      const regions = Buffer.alloc(nx * ny);
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const v = (bestK * ny + j) * nx + i;
          const at = (ny - 1 - j) * nx + (nx - 1 - i);
          const value = hu[v]!;
          image[at] = Number.isFinite(value) ? Math.round(255 * Math.min(1, Math.max(0, (value - lo) / (hi - lo)))) : 0;
          regions[at] = regionOf.get(labels[v]!) ?? 0;
        }
      }
      slices.push({ zMm: FEATURE_GRID.affine[11]! + FEATURE_GRID.affine[10]! * bestK, width: nx, height: ny, pixelMm: FEATURE_GRID.affine[0]!, image: image.toString('base64'), regions: regions.toString('base64') });
    }
    out.push({ id: scan.id, hemisphere: scan.hemisphere, slices });
  }
  return out;
}

/**
 * Example slices of the `count` test scans with the most affected regions; a scan that cannot be
 * read or registered again is left out with a line, and no example never fails the experiment.
 */
export async function examplesFor(folder: string, samples: ReadonlyArray<{ readonly id: string; readonly hemisphere: 'L' | 'R' }>, predictions: ExperimentPredictions, say: (line: string) => void, count = 3): Promise<ExampleScan[]> {
  const out: ExampleScan[] = [];
  for (const i of pickExamples(predictions, count)) {
    const sample = samples[i];
    if (!sample) continue;
    try {
      out.push(...await exampleSlices(folder, [sample]));
    } catch (e) {
      say(`[experiment] no example slices of ${sample.id}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return out;
}
