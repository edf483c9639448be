import { REGION_ANATOMY, REGION_NAMES, type RegionName } from '../cohort/regions.js';
import { headHu, REGION_ELLIPSOIDS } from '../cohort/synth-anatomy.js';
import { mniGrid, type AtlasVoxelMm, type VoxelGrid } from './mni-grid.js';
import { TEMPLATE_HEAD } from './template.js';

export type Side = 'L' | 'R';

/**
 * Label values of an ASPECTS atlas: 0 is background, the left hemisphere's
 * C, L, IC, I, M1…M6 are 1…10 and the right one's are 11…20 (REGION_NAMES
 * order). A site's own atlas must use the same values.
 */
export type AtlasLabel = { readonly value: number; readonly region: RegionName; readonly side: Side };

export const ATLAS_LABELS: readonly AtlasLabel[] = (['L', 'R'] as const).flatMap((side, s) =>
  REGION_NAMES.map((region, r) => ({ value: s * REGION_NAMES.length + r + 1, region, side })));

export function atlasLabel(region: RegionName, side: Side): number {
  return (side === 'L' ? 0 : REGION_NAMES.length) + REGION_NAMES.indexOf(region) + 1;
}

/** The DESIGN §6 centroid of a region on one side (the right one mirrors x). */
export function expectedCentroid(region: RegionName, side: Side): [number, number, number] {
  const [x, y, z] = REGION_ANATOMY[REGION_NAMES.indexOf(region)]!.centroid;
  return [side === 'L' ? x : -x, y, z];
}

export type LabelVolume = VoxelGrid & {
  /** Where it was read from; used in error messages. */
  readonly file: string;
  /** One label value per voxel (ATLAS_LABELS), x fastest. */
  readonly labels: Uint8Array;
};

export const BUILTIN_ATLAS_FILE = '(built-in ASPECTS atlas)';

type Ellipsoid = { cx: number; cy: number; cz: number; ax: number; ay: number; az: number };
type Tissue = 'grey' | 'white' | 'parenchyma';

/**
 * Which template tissue each region may hold: the deep regions are their own
 * tissue (C, L and the insula grey, the internal capsule white); M1–M6 are
 * cortex with the white matter right under it, as the DESIGN §6 volumes imply.
 */
const REGION_TISSUE: readonly Tissue[] = REGION_ANATOMY.map(({ name, tissue }) => (name.startsWith('M') ? 'parenchyma' : tissue));
const TISSUE_HU: Readonly<Record<Tissue, readonly number[]>> = {
  grey: [TEMPLATE_HEAD.greyHu],
  white: [TEMPLATE_HEAD.whiteHu],
  parenchyma: [TEMPLATE_HEAD.greyHu, TEMPLATE_HEAD.whiteHu],
};
const FIT_MM = 2;
const FIT_ITERATIONS = 12;

let fitted: readonly Ellipsoid[] | undefined;

/**
 * The anatomical model's region ellipsoids overlap one another and reach past
 * the brain surface, so clipped to their tissue they fall short of DESIGN §6
 * (IC by 40 %, M6 by half). Each is rescaled and moved, in label priority
 * order on a 2 mm grid, until its clipped volume and centroid match §6. Pure
 * and deterministic; computed once.
 */
function fittedEllipsoids(): readonly Ellipsoid[] {
  if (fitted) return fitted;
  const taken = new Set<string>();
  const out: Ellipsoid[] = [];
  REGION_ANATOMY.forEach(({ volumeMl, centroid }, r) => {
    let e = { ...REGION_ELLIPSOIDS[r]! };
    let points: [number, number, number][] = [];
    for (let n = 0; n < FIT_ITERATIONS; n++) {
      points = regionPoints(e, REGION_TISSUE[r]!, taken);
      const ml = (points.length * FIT_MM ** 3) / 1000;
      const mean = [0, 1, 2].map((a) => points.reduce((s, p) => s + p[a]!, 0) / Math.max(1, points.length));
      const grow = Math.cbrt(volumeMl / Math.max(ml, 0.1));
      e = {
        cx: e.cx + centroid[0] - mean[0]!, cy: e.cy + centroid[1] - mean[1]!, cz: e.cz + centroid[2] - mean[2]!,
        ax: e.ax * grow, ay: e.ay * grow, az: e.az * grow,
      };
    }
    for (const p of regionPoints(e, REGION_TISSUE[r]!, taken)) taken.add(p.join());
    out.push(e);
  });
  fitted = out;
  return out;
}

/** Left-side grid points (FIT_MM apart) inside `e`, of the region's tissue and not taken by a region before it. */
function regionPoints(e: Ellipsoid, tissue: Tissue, taken: ReadonlySet<string>): [number, number, number][] {
  const out: [number, number, number][] = [];
  const from = (c: number, a: number) => Math.ceil((c - a) / FIT_MM) * FIT_MM;
  for (let z = from(e.cz, e.az); z <= e.cz + e.az; z += FIT_MM) {
    for (let y = from(e.cy, e.ay); y <= e.cy + e.ay; y += FIT_MM) {
      for (let x = from(e.cx, e.ax); x <= Math.min(e.cx + e.ax, -FIT_MM); x += FIT_MM) {
        if (inEllipsoid(e, x, y, z) && isTissue(tissue, x, y, z) && !taken.has(`${x},${y},${z}`)) out.push([x, y, z]);
      }
    }
  }
  return out;
}

function inEllipsoid(e: Ellipsoid, x: number, y: number, z: number): boolean {
  const dx = (x - e.cx) / e.ax, dy = (y - e.cy) / e.ay, dz = (z - e.cz) / e.az;
  return dx * dx + dy * dy + dz * dz < 1;
}

function isTissue(tissue: Tissue, x: number, y: number, z: number): boolean {
  return TISSUE_HU[tissue].includes(headHu(TEMPLATE_HEAD, x, y, z));
}

/**
 * The built-in ASPECTS atlas in MNI space, from the project's anatomical model
 * (cohort/synth-anatomy.ts) and the DESIGN §6 volumes and centroids: C and L
 * are grey nuclei, IC the white band behind and between them, I a thin insular
 * sheet of grey, M1–M3 the lateral cortex at the ganglionic level front to
 * back and M4–M6 the cortex at the supraganglionic level (z ≈ 45 mm), each
 * with the white matter right under it. The right side mirrors the left. Pure.
 */
export function buildAspectsAtlas(voxelMm: AtlasVoxelMm = 2): LabelVolume {
  const ellipsoids = fittedEllipsoids();
  const grid = mniGrid(voxelMm);
  const [nx, ny, nz] = grid.dims;
  const [sx, , , x0, , sy, , y0, , , sz, z0] = grid.affine as number[];
  const labels = new Uint8Array(nx * ny * nz);
  for (let k = 0; k < nz; k++) {
    const z = z0! + sz! * k;
    for (let j = 0; j < ny; j++) {
      const y = y0! + sy! * j;
      for (let i = 0; i < nx; i++) {
        const x = x0! + sx! * i;
        if (x === 0) continue; // the midline belongs to neither side
        const r = ellipsoids.findIndex((e, n) => inEllipsoid(e, -Math.abs(x), y, z) && isTissue(REGION_TISSUE[n]!, x, y, z));
        if (r >= 0) labels[(k * ny + j) * nx + i] = (x < 0 ? 0 : REGION_NAMES.length) + r + 1;
      }
    }
  }
  return { file: BUILTIN_ATLAS_FILE, dims: grid.dims, affine: grid.affine, labels };
}
