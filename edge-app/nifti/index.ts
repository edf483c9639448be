export type { DatatypeName, NiftiVolume } from './volume.js';
export { DATATYPES } from './volume.js';
export { parseNifti, gunzipNifti, isGzip } from './parse-nifti.js';
export { renderNifti, type RenderOptions } from './render-nifti.js';
export { readNifti, writeNifti } from './read-nifti.js';
export { applyAffine, invertAffine, multiplyAffines, quaternionToAffine, affineToQuaternion } from './affine.js';
