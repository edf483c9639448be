/** The ten ASPECTS regions in model output order (MODEL.md), with DESIGN §6 anatomy. */

export const REGION_NAMES = ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6'] as const;
export type RegionName = (typeof REGION_NAMES)[number];

export type RegionAnatomy = {
  readonly name: RegionName;
  /** Volume in mL. */
  readonly volumeMl: number;
  /** Centroid of the LEFT region in MNI mm; the right one mirrors x. */
  readonly centroid: readonly [number, number, number];
  readonly tissue: 'grey' | 'white';
};

export const REGION_ANATOMY: readonly RegionAnatomy[] = [
  { name: 'C', volumeMl: 3.7, centroid: [-18, 9, 10], tissue: 'grey' },
  { name: 'L', volumeMl: 8.2, centroid: [-24, -1, 1], tissue: 'grey' },
  { name: 'IC', volumeMl: 3.8, centroid: [-21, -13, 7], tissue: 'white' },
  { name: 'I', volumeMl: 14.8, centroid: [-36, 1, 5], tissue: 'grey' },
  { name: 'M1', volumeMl: 28.0, centroid: [-41, 41, 3], tissue: 'grey' },
  { name: 'M2', volumeMl: 44.3, centroid: [-53, -14, 3], tissue: 'grey' },
  { name: 'M3', volumeMl: 32.4, centroid: [-49, -64, 3], tissue: 'grey' },
  { name: 'M4', volumeMl: 39.4, centroid: [-39, 17, 44], tissue: 'grey' },
  { name: 'M5', volumeMl: 52.5, centroid: [-47, -20, 47], tissue: 'grey' },
  { name: 'M6', volumeMl: 44.1, centroid: [-44, -57, 45], tissue: 'grey' },
];
