/**
 * Decide, from what dcm2niix wrote and said, whether a folder held exactly one complete, evenly
 * spaced series, and which of its outputs to use. Pure.
 *
 * What dcm2niix v1.0.20220720 does (found by experiment, test/intake-dicom.test.ts):
 *  - a slice removed from the middle: exit 0, "Warning: Interslice distance varies in this volume"
 *    and "Warning: Missing images? Expected 29 images, but instance number (0020,0013) ranges from
 *    1 to 30", and two files: `<name>.nii` (29 slices at the first spacing: the gap silently
 *    closed, so every slice above it sits 5 mm off) and `<name>_Eq_1.nii` (resampled to equal
 *    spacing). Neither is the scan, so we refuse.
 *  - uneven spacing with consecutive instance numbers: the same without "Missing images?".
 *  - a slice missing at either end: nothing to notice (a shorter scan; the head check and the
 *    registration's coverage check judge it).
 *  - two series in a folder: one `.json` sidecar and `.nii` per series.
 *  - gantry tilt: "Warning: Note these images have gantry tilt of 15 degrees", and
 *    `<name>_Tilt_1.nii` besides `<name>.nii`. `<name>.nii` stores the sheared slices under an
 *    orthogonal affine, so world positions are wrong by up to tan(tilt) × the slice's distance
 *    from the first; `_Tilt_1` is resampled onto an orthogonal grid that matches the scanner
 *    geometry, and it is the one we use.
 *  - a truncated file: exit 1, "Warning: File not large enough to store image data", no output.
 *  - no DICOM in the folder: exit 2, "Error: Unable to find any DICOM images".
 * Besides its warnings we check the slice positions it printed (`-v 1`) ourselves, so a change
 * in its wording or heuristics cannot let a gap through.
 */
import { basename } from 'node:path';
import type { Dcm2niixLog, SliceReport } from './dcm2niix-log.js';

export type ConversionOutcome = {
  /** dcm2niix's exit code; null when it was killed (timeout). */
  exitCode: number | null;
  log: Dcm2niixLog;
  /** Names dcm2niix wrote in its output folder. */
  outputs: readonly string[];
};

export type RefusalReason = 'no-series' | 'several-series' | 'missing-slice' | 'irregular-spacing' | 'conversion-failed';

export type SeriesDecision =
  | { kind: 'accept'; nifti: string; sidecar: string; tiltCorrected: boolean }
  | { kind: 'refuse'; reason: RefusalReason; message: string };

/** dcm2niix's notices of missing images ("Missing images?", "DICOM images may be missing", "Missing DICOMs") and of uneven spacing. */
const MISSING_NOTICE = /missing images|images may be missing|missing dicoms/i;
const UNEVEN_NOTICE = /interslice distance varies|slice spacing|spacing varies/i;

/** Gaps within this much of the typical one are even: the positions are printed to 6 digits, and scanners jitter. */
const SPACING_TOLERANCE = { mm: 0.1, fraction: 0.05 };

export function decideConversion(outcome: ConversionOutcome): SeriesDecision {
  const { log } = outcome;
  const said = (lines: readonly string[]): string => (lines.length > 0 ? ` (dcm2niix: ${lines.join(' ')})` : '');
  const refuse = (reason: RefusalReason, message: string): SeriesDecision => ({ kind: 'refuse', reason, message });

  if (outcome.exitCode === null) return refuse('conversion-failed', 'dcm2niix did not finish (timed out, killed, or printed too much)');
  const sidecars = outcome.outputs.filter((n) => n.endsWith('.json')).sort();
  const niftis = outcome.outputs.filter((n) => n.endsWith('.nii')).sort();
  if (sidecars.length === 0 || niftis.length === 0) {
    if (outcome.exitCode === 2 || log.found === 0) return refuse('no-series', `no DICOM series found${said(log.errors)}`);
    return refuse('conversion-failed', `dcm2niix could not convert the series (exit ${outcome.exitCode})${said([...log.errors, ...log.warnings])}`);
  }
  if (outcome.exitCode !== 0) {
    return refuse('conversion-failed', `dcm2niix failed part of the conversion (exit ${outcome.exitCode})${said([...log.errors, ...log.warnings])}`);
  }
  if (sidecars.length > 1) {
    return refuse('several-series', `${sidecars.length} series or volumes (${sidecars.map((n) => n.replace(/\.json$/, '')).join(', ')}): a folder must hold exactly one DICOM series`);
  }

  const stem = sidecars[0]!.replace(/\.json$/, '');
  const base = `${stem}.nii`;
  const variant = (pattern: RegExp) => (n: string): boolean => n.startsWith(stem) && pattern.test(n.slice(stem.length));
  const tilt = niftis.find(variant(/^_Tilt_\d+\.nii$/));
  const equalised = niftis.filter(variant(/_Eq_\d+\.nii$/));
  const unknown = niftis.filter((n) => n !== base && n !== tilt && !equalised.includes(n));
  if (!niftis.includes(base) || unknown.length > 0) {
    return refuse('several-series', `dcm2niix wrote several volumes (${niftis.join(', ')}): a folder must hold exactly one DICOM series`);
  }

  const spacing = sliceSpacingProblem(log.slices);
  if (spacing) return refuse(spacing.reason, spacing.message);
  const missing = log.notices.filter((w) => MISSING_NOTICE.test(w));
  if (missing.length > 0) return refuse('missing-slice', `missing slice(s)${said(missing)}`);
  const uneven = log.notices.filter((w) => UNEVEN_NOTICE.test(w));
  if (uneven.length > 0 || equalised.length > 0) {
    return refuse('irregular-spacing', `irregular slice spacing${said(uneven.length > 0 ? uneven : [`wrote ${equalised.join(', ')}`])}`);
  }
  return { kind: 'accept', nifti: tilt ?? base, sidecar: sidecars[0]!, tiltCorrected: tilt !== undefined };
}

/**
 * Missing or unevenly spaced slices, from the positions projected on the slice normal (with gantry
 * tilt the positions step along the table, but their steps along the normal are still even).
 */
export function sliceSpacingProblem(slices: readonly SliceReport[]): { reason: 'missing-slice' | 'irregular-spacing'; message: string } | undefined {
  if (slices.length < 3) return undefined;
  const o = slices[0]!.orientation;
  const normal = [o[1]! * o[5]! - o[2]! * o[4]!, o[2]! * o[3]! - o[0]! * o[5]!, o[0]! * o[4]! - o[1]! * o[3]!];
  const along = slices
    .map((s) => ({ file: s.file, z: s.position[0] * normal[0]! + s.position[1] * normal[1]! + s.position[2] * normal[2]! }))
    .sort((a, b) => a.z - b.z);
  const gaps = along.slice(1).map((s, n) => s.z - along[n]!.z);
  const typical = median(gaps);
  const mm = (v: number): string => `${v.toFixed(2)} mm`;
  if (typical < SPACING_TOLERANCE.mm) {
    return { reason: 'irregular-spacing', message: `slices repeat the same positions (median spacing ${mm(typical)})` };
  }
  const tolerance = Math.max(SPACING_TOLERANCE.mm, SPACING_TOLERANCE.fraction * typical);
  const odd = gaps.map((g, n) => ({ g, n })).filter(({ g }) => Math.abs(g - typical) > tolerance);
  if (odd.length === 0) return undefined;
  const holes = odd.filter(({ g }) => g > typical && Math.abs(g / typical - Math.round(g / typical)) * typical <= tolerance);
  if (holes.length === odd.length) {
    const lost = holes.reduce((sum, { g }) => sum + Math.round(g / typical) - 1, 0);
    const first = holes[0]!;
    const [one, other] = [basename(along[first.n]!.file), basename(along[first.n + 1]!.file)].sort();
    return {
      reason: 'missing-slice',
      message: `${lost} missing slice(s): a ${mm(first.g)} gap between ${one} and ${other}${holes.length > 1 ? ` (and ${holes.length - 1} more gap(s))` : ''} where the spacing is ${mm(typical)}`,
    };
  }
  const sorted = [...gaps].sort((a, b) => a - b);
  return { reason: 'irregular-spacing', message: `irregular slice spacing: gaps from ${mm(sorted[0]!)} to ${mm(sorted.at(-1)!)} (typically ${mm(typical)})` };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
