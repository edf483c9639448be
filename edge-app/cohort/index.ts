export { REGION_NAMES, REGION_ANATOMY, type RegionName } from './regions.js';
export { LABELS_HEADER, parseLabelsCsv, renderLabelsCsv, readLabelsCsv, writeLabelsCsv, type LabelRow } from './labels-csv.js';
export { loadCohort, isNiftiFile, type Cohort, type LoadCohortOptions, type Sample } from './load-cohort.js';
export { synthCohort, synthFileName, SYNTH_STORAGE, type SynthCohort, type SynthCohortOptions } from './synth-cohort.js';
export { synthVolume, type SynthVolume, type SynthVolumeOptions } from './synth-volume.js';
