/**
 * What dcm2niix (run with `-v 1`) says about a conversion: its warnings and errors, and the
 * position and orientation it read from each DICOM file. Parsing its report, not the DICOM
 * files: dcm2niix is the DICOM reader. Pure.
 *
 * Verbose lines look like (v1.0.20220720):
 *   DICOM file: /data/series/IM0027.dcm
 *    patient position (0020,0032)	-117.256	149.982	75.6132
 *    orient (0020,0037)	0.997033	-0.0637442	-0.0431488	-0.0650624	-0.997434	-0.029867
 */

export type SliceReport = {
  file: string;
  /** ImagePositionPatient, LPS mm, as dcm2niix printed it (6 significant digits). */
  position: readonly [number, number, number];
  /** ImageOrientationPatient: row then column direction cosines. */
  orientation: readonly number[];
};

export type Dcm2niixLog = {
  /** The version line, e.g. "Chris Rorden's dcm2niiX version v1.0.20220720 …". */
  version: string | undefined;
  /** "Found N DICOM file(s)". */
  found: number | undefined;
  warnings: string[];
  errors: string[];
  /** Every line except the per-file details, trimmed: some notices have no "Warning:" prefix. */
  notices: string[];
  slices: SliceReport[];
};

const NUMBER = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?`;
const POSITION = new RegExp(String.raw`^\s*patient position \(0020,0032\)\s+(${NUMBER})\s+(${NUMBER})\s+(${NUMBER})\s*$`);
const ORIENT = new RegExp(String.raw`^\s*orient \(0020,0037\)((?:\s+${NUMBER}){6})\s*$`);

export function parseDcm2niixLog(text: string): Dcm2niixLog {
  const log: Dcm2niixLog = { version: undefined, found: undefined, warnings: [], errors: [], notices: [], slices: [] };
  let file: string | undefined;
  let position: [number, number, number] | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (log.version === undefined && /dcm2niix? version/i.test(line)) log.version = line.trim();
    const found = /^Found (\d+) DICOM file/.exec(line);
    if (found) log.found = Number(found[1]);
    if (/^\s*Warning:/i.test(line)) log.warnings.push(line.trim());
    if (/^\s*Error:/i.test(line)) log.errors.push(line.trim());
    if (line.trim() !== '' && !/^\s/.test(line) && !line.startsWith('DICOM file:')) log.notices.push(line.trim());
    const dicomFile = /^DICOM file: (.*)$/.exec(line);
    if (dicomFile) { file = dicomFile[1]; position = undefined; continue; }
    const p = POSITION.exec(line);
    if (p && file !== undefined) { position = [Number(p[1]), Number(p[2]), Number(p[3])]; continue; }
    const o = ORIENT.exec(line);
    if (o && file !== undefined && position !== undefined) {
      log.slices.push({ file, position, orientation: o[1]!.trim().split(/\s+/).map(Number) });
      file = undefined; position = undefined;
    }
  }
  return log;
}
