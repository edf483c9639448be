export { registerVolume, type RegisterOptions, type Registration } from './register.js';
export { resampleToTemplate, resampleVolume } from './resample-to-template.js';
export { blockAverage, type Voxels } from './downsample.js';
export { findHead, type Head } from './head.js';
export { QUALITY_LIMITS, judgeQuality, type QualityLimits, type RegistrationQuality } from './quality.js';
export { REGISTRATION_MM, REGISTRATION_WINDOW_HU, type RegistrationMode } from './parameters.js';
export { parseTransformParameters, transformMatrixLps, lpsToRas } from './transform.js';
