import type { NiftiVolume } from '../nifti/volume.js';
import { REGION_NAMES } from '../cohort/regions.js';
import { headHu, type HeadParams } from '../cohort/synth-anatomy.js';
import { mniGrid, type AtlasVoxelMm } from './mni-grid.js';

/** Mean tissue values of the built-in template (DESIGN §6 HU ranges, mid-range). */
export const TEMPLATE_HEAD: HeadParams = Object.freeze({
  greyHu: 40,
  whiteHu: 25,
  csfHu: 8,
  boneHu: 1000,
  scalpHu: 40,
  hemisphere: 'L',
  dropHu: Object.freeze(REGION_NAMES.map(() => 0)),
});

export const BUILTIN_TEMPLATE_FILE = '(built-in CT template)';

/**
 * A CT-like head template in MNI space from the project's anatomical model
 * (cohort/synth-anatomy.ts): air, scalp, skull, CSF, cortex, white matter,
 * ventricles, thalamus and the basal ganglia. Each voxel is the mean of 2×2×2
 * point samples, so tissue borders have partial volume as a scanner's do and
 * the registration metric varies smoothly. Pure.
 */
export function buildTemplate(voxelMm: AtlasVoxelMm = 2): NiftiVolume {
  const grid = mniGrid(voxelMm);
  const [nx, ny, nz] = grid.dims;
  const [sx, , , x0, , sy, , y0, , , sz, z0] = grid.affine as number[];
  const hu = new Float32Array(nx * ny * nz);
  const q = voxelMm / 4;
  for (let k = 0; k < nz; k++) {
    const z = z0! + sz! * k;
    for (let j = 0; j < ny; j++) {
      const y = y0! + sy! * j;
      for (let i = 0; i < nx; i++) {
        const x = x0! + sx! * i;
        let sum = 0;
        for (const dz of [-q, q]) for (const dy of [-q, q]) for (const dx of [-q, q]) sum += headHu(TEMPLATE_HEAD, x + dx, y + dy, z + dz);
        hu[(k * ny + j) * nx + i] = sum / 8;
      }
    }
  }
  return {
    file: BUILTIN_TEMPLATE_FILE,
    dims: grid.dims,
    pixdim: [voxelMm, voxelMm, voxelMm],
    datatype: 'float32',
    hu,
    affine: grid.affine,
    description: `fedgit CT template, MNI ${voxelMm} mm`,
  };
}
