export { DEFAULT_GRID, GRID_BOX, HU_WINDOW, cellCentre, normaliseHu, type Grid } from './grid.js';
export { resampleToGrid, type VolumeGeometry } from './resample.js';
export { DIFFERENCE_GAIN, pairHemispheres, preprocess, type Hemisphere } from './preprocess.js';
export { FEATURE_GRID, FEATURE_VOXEL_MM, gridIndex, labelsOnFeatureGrid, mirrorIndex } from './feature-grid.js';
export { FEATURE_CLIP, FEATURE_COUNT, FEATURE_NAMES, TISSUE_HU, fitTrend, greyThreshold, indexAtlas, lowerQuantile, regionFeatures } from './region-features.js';
export { FEATURES_VERSION, FEATURE_CACHE_FOLDER, featuresFromRegistered, loadRegionCohort, volumeFeatures, type LoadRegionCohortOptions, type RegionCohort, type RegionPreprocessing, type RegionSample, type VolumeFeatures } from './region-cohort.js';
