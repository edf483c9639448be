/*
 * NIfTI-1 parsing. The header fields are read by the chosen library, nifti-reader-js
 * (`isNIFTI1` + `readHeader` on a private copy of the 348 header bytes): dims, datatype,
 * bitpix, endianness, vox_offset, scl_slope/inter, qform/sform codes, quaternion, qoffset,
 * pixdim (qfac in pixDims[0]) and the srow rows.
 * We keep our own code for:
 *  - gzip: node:zlib, before the library sees anything (its gzip path, readHeaderAsync,
 *    hangs on gz files with long descriptions; readNifti also gunzips off the main thread);
 *  - the affine choice (MODEL.md step 2: sform if sform_code > 0, else our quaternionToAffine; a file
 *    with both codes 0 is refused, since diag(pixdim) leaves left and right undefined):
 *    the library prefers qform when qform_code > sform_code, and its quaternion maths does not
 *    handle a ≈ 0 (NaN / unnormalised 180° rotations), uses pixdim[0] itself rather than its sign
 *    as qfac and does not replace non-positive pixdims, so it disagrees with nibabel;
 *  - voxel data: the library only hands back raw bytes, so byte swapping, typed-array mapping
 *    and scl_slope/scl_inter scaling are ours;
 *  - validation: every refusal of a truncated, corrupt or lying file is a DataInvalid naming the
 *    file; sizeof_hdr / NIfTI-2 / magic checks look at the raw bytes before the library is called
 *    (it would only throw a generic Error or silently accept .hdr/.img headers);
 *  - the description string (the library drops NULs instead of stopping at the first one).
 */
import * as nifti from 'nifti-reader-js';
import { gunzipSync } from 'node:zlib';
import { DataInvalid } from '../../sdk/index.js';
import { determinant3, quaternionToAffine } from './affine.js';
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
type Fail = (reason: string, message: string, extra?: Record<string, unknown>) => never;

export function parseNifti(input: Uint8Array, file: string): NiftiVolume {
  const bytes = isGzip(input) ? gunzipNifti(input, file) : input;
  const fail: Fail = (reason, message, extra = {}) => {
    throw new DataInvalid(`${file}: ${message}`, { file, reason, ...extra });
  };
  checkSignature(bytes, fail);
  const hdr = readHeader(bytes, file);
  const le = hdr.littleEndian;
  const { nx, ny, nz, voxels } = volumeDims(hdr.dims.slice(0, 8), fail);

  const code = hdr.datatypeCode;
  const datatype = datatypeByCode(code);
  if (datatype === undefined) return fail('datatype', `unsupported datatype code ${code}`, { datatype: code });
  const info = DATATYPES[datatype];
  const bitpix = hdr.numBitsPerVoxel;
  if (bitpix !== info.bytes * 8) fail('bitpix', `bitpix ${bitpix} does not match datatype ${datatype}`, { bitpix });

  const voxOffset = hdr.vox_offset;
  if (!Number.isInteger(voxOffset) || voxOffset < NIFTI1_HEADER_BYTES) fail('vox_offset', `bad vox_offset ${voxOffset}`);
  const dataBytes = voxels * info.bytes;
  if (bytes.length < voxOffset + dataBytes) {
    fail('truncated', `truncated: dims ${nx}×${ny}×${nz} ${datatype} need ${dataBytes} bytes of voxels, the file has ${Math.max(0, bytes.length - voxOffset)}`,
      { expectedBytes: voxOffset + dataBytes, actualBytes: bytes.length });
  }

  const pixdim = hdr.pixDims.slice(0, 8);
  const spacing: [number, number, number] = [pixdim[1]!, pixdim[2]!, pixdim[3]!];
  let slope = hdr.scl_slope;
  let inter = hdr.scl_inter;
  if (slope === 0 || !Number.isFinite(slope)) { slope = 1; inter = 0; }
  if (!Number.isFinite(inter)) inter = 0;

  if (hdr.sform_code <= 0 && hdr.qform_code <= 0) {
    // diag(pixdim) would read the array order as RAS, i.e. guess left and right.
    fail('orientation', 'no orientation: sform_code and qform_code are both 0, so there is no voxel-to-world affine; left and right are undefined',
      { sformCode: hdr.sform_code, qformCode: hdr.qform_code });
  }
  const affine = headerAffine(hdr, bytes, file, spacing, pixdim[0]!);
  if (!affine.every(Number.isFinite) || Math.abs(determinant3(affine)) < 1e-12) {
    fail('affine', 'the voxel-to-world affine is singular or not finite', { affine });
  }

  const raw = typedVoxels(bytes, voxOffset, voxels, datatype, le);
  const hu = new Float32Array(voxels);
  if (slope === 1 && inter === 0) hu.set(raw);
  else for (let n = 0; n < voxels; n++) hu[n] = raw[n]! * slope + inter;

  return { file, dims: [nx, ny, nz], pixdim: spacing, datatype, hu, affine, description: cString(bytes, 148, 80) };
}

/** Raw-byte sanity checks the library would not report precisely: length, sizeof_hdr, magic. */
function checkSignature(bytes: Uint8Array, fail: Fail): void {
  if (bytes.length < NIFTI1_HEADER_BYTES) fail('truncated', `only ${bytes.length} bytes, shorter than a NIfTI-1 header (348)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, NIFTI1_HEADER_BYTES);
  const sizeofHdr = view.getInt32(0, true);
  if (sizeofHdr !== 348 && view.getInt32(0, false) !== 348) {
    if (sizeofHdr === 540 || view.getInt32(0, false) === 540) fail('nifti2', 'NIfTI-2 is not supported');
    fail('sizeof_hdr', `not a NIfTI-1 file (sizeof_hdr ${sizeofHdr}, expected 348)`);
  }
  const magic = String.fromCharCode(bytes[344]!, bytes[345]!, bytes[346]!);
  if (magic === 'ni1') fail('magic', 'separate .hdr/.img pairs are not supported, use a single .nii file');
  if (magic !== 'n+1' || bytes[347] !== 0) fail('magic', `bad magic ${JSON.stringify(magic)}, expected "n+1"`);
}

/** A 3-D volume's size from dim[0..7]: rank 1..7, positive sizes, nothing beyond the third dimension, plausibly small. */
function volumeDims(dim: number[], fail: Fail): { nx: number; ny: number; nz: number; voxels: number } {
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
  return { nx, ny, nz, voxels };
}

/**
 * The 348 header bytes as a private ArrayBuffer (a Buffer from fs/zlib may be a view into a
 * shared pool, so slice by byteOffset). Only the header is passed: extensions are not ours to
 * parse, and the library would throw on malformed ones that we (and nibabel) ignore.
 */
function headerBuffer(bytes: Uint8Array): ArrayBuffer {
  return (bytes.buffer as ArrayBuffer).slice(bytes.byteOffset, bytes.byteOffset + NIFTI1_HEADER_BYTES);
}

function readHeader(bytes: Uint8Array, file: string): nifti.NIFTI1 {
  const data = headerBuffer(bytes);
  if (!nifti.isNIFTI1(data)) {
    throw new DataInvalid(`${file}: not a NIfTI-1 header`, { file, reason: 'magic' });
  }
  let hdr: nifti.NIFTI1 | nifti.NIFTI2;
  try {
    hdr = nifti.readHeader(data);
  } catch (cause) {
    throw new DataInvalid(`${file}: unreadable NIfTI-1 header (${(cause as Error).message})`, { file, reason: 'header' }, { cause });
  }
  if (!(hdr instanceof nifti.NIFTI1)) throw new DataInvalid(`${file}: not a NIfTI-1 header`, { file, reason: 'magic' });
  return hdr;
}

/** MODEL.md step 2: sform if sform_code > 0, else the qform (parseNifti has refused a file with neither). */
function headerAffine(hdr: nifti.NIFTI1, bytes: Uint8Array, file: string, spacing: [number, number, number], qfac: number): number[] {
  if (hdr.sform_code > 0) {
    const rows = srowRows(hdr, bytes, file);
    return [...rows[0]!.slice(0, 4), ...rows[1]!.slice(0, 4), ...rows[2]!.slice(0, 4), 0, 0, 0, 1];
  }
  return quaternionToAffine({
    b: hdr.quatern_b, c: hdr.quatern_c, d: hdr.quatern_d,
    qfac: qfac < 0 ? -1 : 1,
    pixdim: spacing,
    offset: [hdr.qoffset_x, hdr.qoffset_y, hdr.qoffset_z],
  });
}

/**
 * srow_x/y/z as read by the library. Its `affine` holds the srow rows only when it chose the
 * sform itself, i.e. unless qform_code > 0 (it prefers the qform when qform_code > sform_code);
 * in that case re-read a copy of the header with qform_code cleared, so the rows still come from
 * the library's reader.
 */
function srowRows(hdr: nifti.NIFTI1, bytes: Uint8Array, file: string): number[][] {
  if (hdr.qform_code <= 0) return hdr.affine;
  const data = headerBuffer(bytes);
  new DataView(data).setInt16(252, 0, hdr.littleEndian);
  try {
    return nifti.readHeader(data).affine;
  } catch (cause) {
    throw new DataInvalid(`${file}: unreadable NIfTI-1 header (${(cause as Error).message})`, { file, reason: 'header' }, { cause });
  }
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
