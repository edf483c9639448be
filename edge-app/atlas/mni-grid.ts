/** Voxel grids in MNI space, where the template and the ASPECTS atlas live. */

export type VoxelGrid = {
  readonly dims: readonly [number, number, number];
  /** Row-major 4×4 voxel (i, j, k) → world RAS+ mm. */
  readonly affine: readonly number[];
};

export type AtlasVoxelMm = 1 | 2;

/** The MNI152 box of the FSL templates: x −90…90, y −126…90, z −72…108 mm; voxel centres on whole mm. */
const MNI_BOX = { min: [-90, -126, -72], max: [90, 90, 108] } as const;

/** The MNI box at 1 or 2 mm, stored RAS+ (i → right, j → anterior, k → superior). */
export function mniGrid(voxelMm: AtlasVoxelMm): VoxelGrid {
  const dims = [0, 1, 2].map((a) => Math.round((MNI_BOX.max[a]! - MNI_BOX.min[a]!) / voxelMm) + 1) as [number, number, number];
  const [x0, y0, z0] = MNI_BOX.min;
  return {
    dims,
    affine: [voxelMm, 0, 0, x0, 0, voxelMm, 0, y0, 0, 0, voxelMm, z0, 0, 0, 0, 1],
  };
}
