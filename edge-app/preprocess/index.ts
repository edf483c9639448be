export { DEFAULT_GRID, GRID_BOX, HU_WINDOW, cellCentre, normaliseHu, type Grid } from './grid.js';
export { resampleToGrid, type VolumeGeometry } from './resample.js';
export { DIFFERENCE_GAIN, pairHemispheres, preprocess, type Hemisphere } from './preprocess.js';
