import { gunzipSync } from 'node:zlib';
import { DataInvalid } from '../../operator/errors.js';
import { determinant3, diagonalAffine, quaternionToAffine } from './affine.js';
import { DATATYPES, datatypeByCode, type NiftiVolume } from './volume.js';

export const NIFTI1_HEADER_BYTES = 348;
const MAX_VOXELS = 2 ** 30;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decompresses a .nii.gz payload; corrupt gzip becomes DataInvalid naming the file. */
export function gunzipNifti(bytes: Uint8Array, file: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (cause) {
    throw new DataInvalid(`${file}: corrupt gzip data (${(cause as Error).message})`, { file, reason: 'gzip' }, { cause });
  }
}

/**
 * Parses a single-file NIfTI-1 image (`n+1`), gzipped or not, into HU.
 * Pure apart from the synchronous gunzip; every refusal is DataInvalid naming the file.
 */
export function parseNifti(input: Uint8Array, file: string): NiftiVolume {
  const bytes = isGzip(input) ? gunzipNifti(input, file) : input;
  const fail = (reason: string, message: string, extra: Record<string, unknown> = {}): never => {
    throw new DataInvalid(`${file}: ${message}`, { file, reason, ...extra });
  };
  if (bytes.length < NIFTI1_HEADER_BYTES) fail('truncated', `only ${bytes.length} bytes, shorter than a NIfTI-1 header (348)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  let le = true;
  const sizeofHdr = view.getInt32(0, true);
  if (sizeofHdr !== 348) {
    if (view.getInt32(0, false) === 348) le = false;
    else if (sizeofHdr === 540 || view.getInt32(0, false) === 540) fail('nifti2', 'NIfTI-2 is not supported');
    else fail('sizeof_hdr', `not a NIfTI-1 file (sizeof_hdr ${sizeofHdr}, expected 348)`);
  }
  const magic = String.fromCharCode(bytes[344]!, bytes[345]!, bytes[346]!);
  if (magic === 'ni1') fail('magic', 'separate .hdr/.img pairs are not supported, use a single .nii file');
  if (magic !== 'n+1' || bytes[347] !== 0) fail('magic', `bad magic ${JSON.stringify(magic)}, expected "n+1"`);

  const i16 = (at: number): number => view.getInt16(at, le);
  const f32 = (at: number): number => view.getFloat32(at, le);

  const dim = Array.from({ length: 8 }, (_, n) => i16(40 + 2 * n));
  const rank = dim[0]!;
  if (rank < 1 || rank > 7) fail('dims', `dim[0] = ${rank} is not in 1..7`, { dim });
  for (let n = 1; n <= rank; n++) {
    if (dim[n]! < 1) fail('dims', `dim[${n}] = ${dim[n]} is not positive`, { dim });
  }
  for (let n = 4; n <= rank; n++) {
    if (dim[n]! > 1) fail('dims', `${rank}-D image with dim[${n}] = ${dim[n]}: only 3-D volumes are supported`, { dim });
  }
  const nx = dim[1]!, ny = rank >= 2 ? dim[2]! : 1, nz = rank >= 3 ? dim[3]! : 1;
  const voxels = nx * ny * nz;
  if (voxels > MAX_VOXELS) fail('dims', `dims ${nx}×${ny}×${nz} are implausibly large`, { dim });

  const code = i16(70);
  const datatype = datatypeByCode(code);
  if (datatype === undefined) return fail('datatype', `unsupported datatype code ${code}`, { datatype: code });
  const info = DATATYPES[datatype];
  const bitpix = i16(72);
  if (bitpix !== info.bytes * 8) fail('bitpix', `bitpix ${bitpix} does not match datatype ${datatype}`, { bitpix });

  const voxOffset = f32(108);
  if (!Number.isInteger(voxOffset) || voxOffset < NIFTI1_HEADER_BYTES) fail('vox_offset', `bad vox_offset ${voxOffset}`);
  const dataBytes = voxels * info.bytes;
  if (bytes.length < voxOffset + dataBytes) {
    fail('truncated', `truncated: dims ${nx}×${ny}×${nz} ${datatype} need ${dataBytes} bytes of voxels, the file has ${Math.max(0, bytes.length - voxOffset)}`,
      { expectedBytes: voxOffset + dataBytes, actualBytes: bytes.length });
  }

  const pixdim = Array.from({ length: 8 }, (_, n) => f32(76 + 4 * n));
  const spacing: [number, number, number] = [pixdim[1]!, pixdim[2]!, pixdim[3]!];
  let slope = f32(112);
  let inter = f32(116);
  if (slope === 0 || !Number.isFinite(slope)) { slope = 1; inter = 0; }
  if (!Number.isFinite(inter)) inter = 0;

  const affine = headerAffine(view, le, spacing, pixdim[0]!);
  if (!affine.every(Number.isFinite) || Math.abs(determinant3(affine)) < 1e-12) {
    fail('affine', 'the voxel-to-world affine is singular or not finite', { affine });
  }

  const raw = typedVoxels(bytes, voxOffset, voxels, datatype, le);
  const hu = new Float32Array(voxels);
  if (slope === 1 && inter === 0) hu.set(raw);
  else for (let n = 0; n < voxels; n++) hu[n] = raw[n]! * slope + inter;

  return { file, dims: [nx, ny, nz], pixdim: spacing, datatype, hu, affine, description: cString(bytes, 148, 80) };
}

/** MODEL.md step 2: sform if sform_code > 0, else qform if qform_code > 0, else diag(pixdim). */
function headerAffine(view: DataView, le: boolean, spacing: [number, number, number], qfac: number): number[] {
  const f32 = (at: number): number => view.getFloat32(at, le);
  if (view.getInt16(254, le) > 0) {
    return [...Array.from({ length: 12 }, (_, n) => f32(280 + 4 * n)), 0, 0, 0, 1];
  }
  if (view.getInt16(252, le) > 0) {
    return quaternionToAffine({
      b: f32(256), c: f32(260), d: f32(264),
      qfac: qfac < 0 ? -1 : 1,
      pixdim: spacing,
      offset: [f32(268), f32(272), f32(276)],
    });
  }
  return diagonalAffine(spacing);
}

const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The voxel bytes as a typed array: a view when aligned and native-endian, else an (optionally byte-swapped) copy. */
function typedVoxels(bytes: Uint8Array, offset: number, count: number, datatype: keyof typeof DATATYPES, le: boolean) {
  const info = DATATYPES[datatype];
  const start = bytes.byteOffset + offset;
  if (le === NATIVE_LE || info.bytes === 1) {
    if (start % info.bytes === 0) return new info.array(bytes.buffer as ArrayBuffer, start, count);
    return new info.array(copyBytes(bytes, offset, count * info.bytes).buffer, 0, count);
  }
  const copy = copyBytes(bytes, offset, count * info.bytes);
  const width = info.bytes;
  for (let at = 0; at < copy.length; at += width) {
    for (let lo = at, hi = at + width - 1; lo < hi; lo++, hi--) {
      const t = copy[lo]!; copy[lo] = copy[hi]!; copy[hi] = t;
    }
  }
  return new info.array(copy.buffer, 0, count);
}

/** A fresh, aligned copy (Buffer#slice would return a view into the same memory). */
function copyBytes(bytes: Uint8Array, offset: number, length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes.subarray(offset, offset + length));
}

function cString(bytes: Uint8Array, at: number, length: number): string {
  let end = at;
  while (end < at + length && bytes[end] !== 0) end++;
  return new TextDecoder('latin1').decode(bytes.subarray(at, end));
}
