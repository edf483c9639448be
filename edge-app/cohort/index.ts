export { REGION_NAMES, REGION_ANATOMY, type RegionName } from './regions.js';
export { LABELS_HEADER, parseLabelsCsv, renderLabelsCsv, readLabelsCsv, writeLabelsCsv, type LabelRow } from './labels-csv.js';
export { loadCohort, isNiftiFile, type Cohort, type LoadCohortOptions, type Sample } from './load-cohort.js';
export { synthCohort, synthFileName, SYNTH_STORAGE, SYNTH_TRUTH_FILE, type SynthCohort, type SynthCohortOptions } from './synth-cohort.js';
export { synthVolume, type SynthVolume, type SynthVolumeOptions } from './synth-volume.js';
export { synthScannerVolume, poseMatrices, orientationMatrix, HEAD_CENTRE_MNI, type ScannerTruth, type ScannerVolume, type ScannerVolumeOptions } from './synth-scanner.js';
export {
  SYNTH_PROFILES, SYNTH_STORAGES, DEFAULT_SYNTH_PROFILE, STORAGE_OPTIONS, withOverrides, profileProblem, orientationProblem, describeProfile,
  type Range, type SynthOverrides, type SynthProfile, type SynthScanner, type SynthStorage,
} from './synth-settings.js';
