/** A 3-D NIfTI-1 volume in Hounsfield units, as the edge app sees it. */

export type DatatypeName = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

export type NiftiVolume = {
  /** Where it was read from (or will be written to); used in error messages. */
  readonly file: string;
  readonly dims: readonly [nx: number, ny: number, nz: number];
  /** Voxel sizes in mm (pixdim[1..3]). */
  readonly pixdim: readonly [number, number, number];
  /** Storage type in the file (the `hu` array is always float32). */
  readonly datatype: DatatypeName;
  /** Voxel values after scl_slope/scl_inter, x fastest, then y, then z. */
  readonly hu: Float32Array;
  /** Row-major 4×4 voxel (i, j, k) → world RAS+ mm. */
  readonly affine: readonly number[];
  readonly description: string;
};

type DatatypeInfo = { code: number; bytes: number; array: TypedArrayConstructor; min: number; max: number; integer: boolean };
type TypedArrayConstructor =
  | Uint8ArrayConstructor | Int8ArrayConstructor | Int16ArrayConstructor | Uint16ArrayConstructor
  | Int32ArrayConstructor | Uint32ArrayConstructor | Float32ArrayConstructor | Float64ArrayConstructor;

export const DATATYPES: Readonly<Record<DatatypeName, DatatypeInfo>> = {
  uint8: { code: 2, bytes: 1, array: Uint8Array, min: 0, max: 255, integer: true },
  int16: { code: 4, bytes: 2, array: Int16Array, min: -32768, max: 32767, integer: true },
  int32: { code: 8, bytes: 4, array: Int32Array, min: -2147483648, max: 2147483647, integer: true },
  float32: { code: 16, bytes: 4, array: Float32Array, min: -Infinity, max: Infinity, integer: false },
  float64: { code: 64, bytes: 8, array: Float64Array, min: -Infinity, max: Infinity, integer: false },
  int8: { code: 256, bytes: 1, array: Int8Array, min: -128, max: 127, integer: true },
  uint16: { code: 512, bytes: 2, array: Uint16Array, min: 0, max: 65535, integer: true },
  uint32: { code: 768, bytes: 4, array: Uint32Array, min: 0, max: 4294967295, integer: true },
};

export function datatypeByCode(code: number): DatatypeName | undefined {
  return (Object.keys(DATATYPES) as DatatypeName[]).find((name) => DATATYPES[name].code === code);
}
