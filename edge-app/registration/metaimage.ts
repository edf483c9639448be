import type { VoxelGrid } from '../atlas/mni-grid.js';

/**
 * An ITK MetaImage header (.mhd) for a grid with orthonormal axes. elastix is
 * handed MetaImage rather than NIfTI because ITK's NIfTI reader chooses
 * between qform and sform by its own rules; here the geometry is stated once,
 * in ITK's LPS world: (x, y, z)_LPS = (−x, −y, z)_RAS. Pure.
 */
export function renderMetaImageHeader(grid: VoxelGrid, dataFile: string, elementType: 'MET_FLOAT' | 'MET_UCHAR'): string {
  const a = grid.affine;
  const lps = [-1, -1, 1];
  const spacing = [0, 1, 2].map((c) => Math.hypot(a[c]!, a[4 + c]!, a[8 + c]!));
  // TransformMatrix lists the direction cosines column by column (one axis after another).
  const direction = [0, 1, 2].flatMap((c) => [0, 1, 2].map((r) => (lps[r]! * a[r * 4 + c]!) / spacing[c]!));
  const origin = [0, 1, 2].map((r) => lps[r]! * a[r * 4 + 3]!);
  return [
    'ObjectType = Image',
    'NDims = 3',
    'BinaryData = True',
    'BinaryDataByteOrderMSB = False',
    'CompressedData = False',
    `TransformMatrix = ${direction.map(num).join(' ')}`,
    `Offset = ${origin.map(num).join(' ')}`,
    `ElementSpacing = ${spacing.map(num).join(' ')}`,
    `DimSize = ${grid.dims.join(' ')}`,
    `ElementType = ${elementType}`,
    `ElementDataFile = ${dataFile}`,
    '',
  ].join('\n');
}

const num = (v: number): string => (Object.is(v, -0) ? '0' : String(v));
