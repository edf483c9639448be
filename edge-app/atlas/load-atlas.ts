import { DataInvalid } from '../../sdk/index.js';
import { applyAffine, invertAffine } from '../nifti/affine.js';
import { readNifti } from '../nifti/read-nifti.js';
import type { NiftiVolume } from '../nifti/volume.js';
import { ATLAS_LABELS, buildAspectsAtlas, expectedCentroid, type LabelVolume } from './aspects-atlas.js';
import type { AtlasVoxelMm, VoxelGrid } from './mni-grid.js';
import { buildTemplate } from './template.js';

/** A CT template and an ASPECTS label volume in one (MNI) space. */
export type Atlas = { readonly template: NiftiVolume; readonly atlas: LabelVolume };

export type AtlasSource = {
  /** A site's own CT template (NIfTI, HU, MNI space); default the built-in one. */
  templateFile?: string;
  /** A site's own ASPECTS label volume (NIfTI, ATLAS_LABELS values, MNI space); default the built-in one. */
  atlasFile?: string;
  /** Voxel size of the built-in template and atlas. */
  voxelMm?: AtlasVoxelMm;
};

/** The MNI box the ASPECTS regions occupy; a template or atlas must reach over it. */
const ASPECTS_BOX = { min: [-70, -90, -20], max: [70, 65, 70] } as const;
/** Published atlases draw regions differently; a centroid farther than this is another space or another label scheme. */
const CENTROID_TOLERANCE_MM = 20;

const builtins = new Map<AtlasVoxelMm, Atlas>();

/** The built-in template and atlas (built once per voxel size: about a second at 2 mm). */
export function builtinAtlas(voxelMm: AtlasVoxelMm = 2): Atlas {
  let atlas = builtins.get(voxelMm);
  if (!atlas) builtins.set(voxelMm, (atlas = { template: buildTemplate(voxelMm), atlas: buildAspectsAtlas(voxelMm) }));
  return atlas;
}

/** A site's template and/or atlas files, checked; whatever is not given is the built-in one. */
export async function loadAtlas(source: AtlasSource = {}): Promise<Atlas> {
  const template = source.templateFile ? await readNifti(source.templateFile) : builtinAtlas(source.voxelMm).template;
  if (source.templateFile) checkTemplate(template);
  const atlas = source.atlasFile ? parseLabelVolume(await readNifti(source.atlasFile)) : builtinAtlas(source.voxelMm).atlas;
  if (source.atlasFile) checkAtlas(atlas, template);
  return { template, atlas };
}

/** Refuses a template that is not a CT head in HU over the MNI box. */
export function checkTemplate(template: NiftiVolume): void {
  checkGrid(template.file, template, 'template');
  let air = 0, bone = 0, brain = 0;
  for (const v of template.hu) {
    if (v < -500) air++;
    else if (v > 300) bone++;
    else if (v >= 10 && v <= 60) brain++;
  }
  const n = template.hu.length;
  if (air < 0.05 * n || bone < 0.005 * n || brain < 0.05 * n) {
    const pct = (c: number) => `${((100 * c) / n).toFixed(1)} %`;
    throw new DataInvalid(
      `${template.file}: does not look like a CT template in Hounsfield units (air below −500 HU ${pct(air)}, bone above 300 HU ${pct(bone)}, brain 10–60 HU ${pct(brain)}; expected at least 5 %, 0.5 %, 5 %)`,
      { file: template.file, reason: 'template-values', air: air / n, bone: bone / n, brain: brain / n });
  }
}

/** Reads label values from a NIfTI volume, refusing anything but whole numbers 0…20. */
export function parseLabelVolume(volume: NiftiVolume): LabelVolume {
  const labels = new Uint8Array(volume.hu.length);
  const max = ATLAS_LABELS.length;
  for (let n = 0; n < labels.length; n++) {
    const v = volume.hu[n]!;
    if (!(Number.isInteger(v) && v >= 0 && v <= max)) {
      throw new DataInvalid(`${volume.file}: voxel ${n} holds ${v}; an ASPECTS atlas holds whole numbers 0…${max} (left C…M6 = 1…10, right = 11…20)`,
        { file: volume.file, reason: 'atlas-values', voxel: n, value: v });
    }
    labels[n] = v;
  }
  return { file: volume.file, dims: volume.dims, affine: volume.affine, labels };
}

/**
 * Refuses an atlas whose labels are missing, on the wrong side, far from
 * their DESIGN §6 place (another space or label scheme) or outside the template.
 */
export function checkAtlas(atlas: LabelVolume, template: VoxelGrid & { file: string }): void {
  checkGrid(atlas.file, atlas, 'atlas');
  const fail = (message: string, data: Record<string, unknown>): never => {
    throw new DataInvalid(`${atlas.file}: ${message}`, { file: atlas.file, ...data });
  };
  const stats = labelCentroids(atlas);
  const toTemplateVoxel = invertAffine(template.affine);
  for (const { value, region, side } of ATLAS_LABELS) {
    const s = stats.get(value);
    if (!s) return fail(`label ${value} (${side} ${region}) is missing; an ASPECTS atlas has labels 1…20 (left C…M6 = 1…10, right = 11…20)`, { reason: 'atlas-labels', label: value });
    const expected = expectedCentroid(region, side);
    const off = Math.hypot(s.centroid[0] - expected[0], s.centroid[1] - expected[1], s.centroid[2] - expected[2]);
    if (off > CENTROID_TOLERANCE_MM || Math.sign(s.centroid[0]) !== Math.sign(expected[0])) {
      fail(`label ${value} (${side} ${region}) is centred at (${s.centroid.map((c) => c.toFixed(0)).join(', ')}) mm, ${off.toFixed(0)} mm from its MNI place (${expected.join(', ')}): is the atlas in MNI space with left C…M6 = 1…10, right = 11…20?`,
        { reason: 'atlas-space', label: value, centroid: s.centroid, expected });
    }
    const v = applyAffine(toTemplateVoxel, ...s.centroid);
    if (v.some((c, a) => c < -0.5 || c > template.dims[a]! - 0.5)) {
      fail(`label ${value} (${side} ${region}) lies outside the template ${template.file}: they are not in one space`, { reason: 'atlas-space', label: value });
    }
  }
}

function labelCentroids(atlas: LabelVolume): Map<number, { voxels: number; centroid: [number, number, number] }> {
  const [nx, ny, nz] = atlas.dims;
  const sums = new Map<number, number[]>();
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const value = atlas.labels[(k * ny + j) * nx + i]!;
        if (value === 0) continue;
        const s = sums.get(value) ?? [0, 0, 0, 0];
        s[0]! += i; s[1]! += j; s[2]! += k; s[3]!++;
        sums.set(value, s);
      }
    }
  }
  return new Map([...sums].map(([value, [i, j, k, n]]) => [value, { voxels: n!, centroid: applyAffine(atlas.affine, i! / n!, j! / n!, k! / n!) }]));
}

/** A grid with an orientation that reaches over the ASPECTS regions of the MNI box. */
function checkGrid(file: string, grid: VoxelGrid, what: string): void {
  const a = grid.affine;
  if (a[3] === 0 && a[7] === 0 && a[11] === 0 && [1, 2, 4, 6, 8, 9].every((n) => a[n] === 0)) {
    throw new DataInvalid(`${file}: the ${what} has no orientation (voxel-to-world is a bare scaling; sform and qform codes 0?)`, { file, reason: 'orientation' });
  }
  const corners = [0, 1].flatMap((ci) => [0, 1].flatMap((cj) => [0, 1].map((ck) =>
    applyAffine(a, ci * (grid.dims[0] - 1), cj * (grid.dims[1] - 1), ck * (grid.dims[2] - 1)))));
  const axes = ['x', 'y', 'z'];
  for (let ax = 0; ax < 3; ax++) {
    const lo = Math.min(...corners.map((c) => c[ax]!)), hi = Math.max(...corners.map((c) => c[ax]!));
    if (lo > ASPECTS_BOX.min[ax]! || hi < ASPECTS_BOX.max[ax]!) {
      throw new DataInvalid(`${file}: the ${what} spans ${axes[ax]} ${lo.toFixed(0)}…${hi.toFixed(0)} mm, not the MNI brain (${ASPECTS_BOX.min[ax]}…${ASPECTS_BOX.max[ax]} mm): is it in MNI space?`,
        { file, reason: 'space', axis: axes[ax], range: [lo, hi] });
    }
  }
}
