export { mniGrid, type AtlasVoxelMm, type VoxelGrid } from './mni-grid.js';
export { buildTemplate, BUILTIN_TEMPLATE_FILE, TEMPLATE_HEAD } from './template.js';
export { ATLAS_LABELS, atlasLabel, buildAspectsAtlas, BUILTIN_ATLAS_FILE, expectedCentroid, type AtlasLabel, type LabelVolume, type Side } from './aspects-atlas.js';
export { builtinAtlas, checkAtlas, checkTemplate, loadAtlas, parseLabelVolume, type Atlas, type AtlasSource } from './load-atlas.js';
