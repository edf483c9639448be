/** The plan's `app.options` for aspects-cnn, validated when the plan is read. */
import { z } from 'zod';

const Grid = z
  .strictObject({
    depth: z.number().int().min(8).max(256),
    height: z.number().int().min(8).max(512),
    width: z.number().int().min(16).max(512),
  })
  .refine((g) => g.depth % 8 === 0 && g.height % 8 === 0 && g.width % 16 === 0, 'depth and height must be multiples of 8, width a multiple of 16');

export const AspectsOptions = z.strictObject({
  /** 8×16×16 learns best on 136 training volumes (edge-app/aspects/MODEL.md, "The default job"). */
  grid: Grid.default({ depth: 8, height: 16, width: 16 }),
  batchSize: z.number().int().min(1).max(256).default(4),
  learningRate: z.number().positive().max(1).default(3e-3),
  validationFraction: z.number().min(0).max(0.9).default(0.2),
});
export type AspectsOptions = z.output<typeof AspectsOptions>;
