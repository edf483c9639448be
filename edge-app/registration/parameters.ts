/** elastix parameter files for head CT → template. */

export type RegistrationMode = 'rigid' | 'affine';

export type ParameterOptions = {
  mode: RegistrationMode;
  /** Centre of rotation in the template's world, ITK LPS mm. */
  centreLps: readonly [number, number, number];
  /** Seeds elastix's random sampler, so a run is repeatable. */
  randomSeed?: number;
};

/** Images are given to elastix clipped to this window, so bone and air do not swamp the brain in the histogram. */
export const REGISTRATION_WINDOW_HU = [0, 100] as const;
/** Voxel size of the images elastix sees. */
export const REGISTRATION_MM = 2;

const TRANSFORM: Record<RegistrationMode, string> = { rigid: 'EulerTransform', affine: 'AffineTransform' };

/**
 * Mattes mutual information (CT ↔ template need not share intensities),
 * four levels from 16 mm down to the 2 mm images, adaptive stochastic gradient
 * descent on random samples within the fixed mask. Pure.
 */
export function renderParameters(options: ParameterOptions): string {
  const entries: [string, string | number | readonly (string | number)[]][] = [
    ['FixedInternalImagePixelType', '"float"'],
    ['MovingInternalImagePixelType', '"float"'],
    ['FixedImageDimension', 3],
    ['MovingImageDimension', 3],
    ['UseDirectionCosines', '"true"'],
    ['Registration', '"MultiResolutionRegistration"'],
    ['Interpolator', '"LinearInterpolator"'],
    ['ResampleInterpolator', '"FinalBSplineInterpolator"'],
    ['FinalBSplineInterpolationOrder', 1],
    ['Resampler', '"DefaultResampler"'],
    ['FixedImagePyramid', '"FixedSmoothingImagePyramid"'],
    ['MovingImagePyramid', '"MovingSmoothingImagePyramid"'],
    ['Optimizer', '"AdaptiveStochasticGradientDescent"'],
    ['Transform', `"${TRANSFORM[options.mode]}"`],
    ['Metric', '"AdvancedMattesMutualInformation"'],
    ['NumberOfHistogramBins', 32],
    ['AutomaticScalesEstimation', '"true"'],
    // The caller moves the head's centre onto the template's; elastix only refines.
    ['AutomaticTransformInitialization', '"false"'],
    ['CenterOfRotationPoint', options.centreLps],
    ['HowToCombineTransforms', '"Compose"'],
    ['ErodeMask', '"false"'],
    ['NumberOfResolutions', 4],
    ['ImagePyramidSchedule', [8, 8, 8, 4, 4, 4, 2, 2, 2, 1, 1, 1]],
    ['MaximumNumberOfIterations', [200, 200, 250, 400]],
    ['ImageSampler', '"RandomCoordinate"'],
    ['NumberOfSpatialSamples', [2048, 2048, 4096, 8192]],
    ['NewSamplesEveryIteration', '"true"'],
    ['RandomSeed', options.randomSeed ?? 20240917],
    ['DefaultPixelValue', 0],
    ['WriteResultImage', '"false"'],
    ['WriteTransformParametersEachResolution', '"false"'],
    ['ResultImagePixelType', '"float"'],
    ['ResultImageFormat', '"mhd"'],
  ];
  return entries.map(([key, value]) => `(${key} ${Array.isArray(value) ? value.join(' ') : value})`).join('\n') + '\n';
}
