/** The plan's `app.options` for aspects-region/v3 (app ids `aspects-cnn` and `aspects-region`), validated when the plan is read. */
import { z } from 'zod';
import { DEFAULT_HIDDEN, MAX_HIDDEN } from './region-spec.js';

export const RegionOptions = z.strictObject({
  /** Hidden units of the shared per-region MLP. */
  hidden: z.number().int().min(1).max(MAX_HIDDEN).default(DEFAULT_HIDDEN),
  batchSize: z.number().int().min(1).max(256).default(8),
  learningRate: z.number().positive().max(1).default(3e-3),
  validationFraction: z.number().min(0).max(0.9).default(0.2),
  /** Registration into the template: rigid (6 DOF, default) or affine (12). */
  registration: z.enum(['rigid', 'affine']).default('rigid'),
  /** A CT template in MNI space (NIfTI, HU) instead of the built-in one; absolute, or relative to each edge's data folder. */
  templateFile: z.string().min(1).optional(),
  /** An ASPECTS label volume in MNI space (left C…M6 = 1…10, right = 11…20) instead of the built-in one; absolute, or relative to each edge's data folder. */
  atlasFile: z.string().min(1).optional(),
});
export type RegionOptions = z.output<typeof RegionOptions>;
