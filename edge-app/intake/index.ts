export { convertDicomSeries, isDicomSeriesFolder, type ConvertDicomOptions, type DicomConversion } from './dicom.js';
export { measureHead, headProblem, requireHead, HEAD_LIMITS, type HeadMeasure } from './head-check.js';
export { readScan, resolveVolume, isNiftiName, defaultDicomCacheDir, CACHE_FOLDER, type ResolveOptions, type ResolvedVolume, type Scan } from './resolve-volume.js';
