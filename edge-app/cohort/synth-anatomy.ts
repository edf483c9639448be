import { REGION_ANATOMY } from './regions.js';

/** Tissue values and lesions of one synthetic head (HU before scanner noise). */
export type HeadParams = {
  greyHu: number;
  whiteHu: number;
  csfHu: number;
  boneHu: number;
  scalpHu: number;
  /** Symptomatic hemisphere: lesions are only on this side. */
  hemisphere: 'L' | 'R';
  /** Per region (REGION_NAMES order): HU drop of its affected tissue, 0 = not affected. */
  dropHu: readonly number[];
  /**
   * Per region: where in it the lesion lies (left-side MNI mm), its semi-axes and the width of its
   * blurred border. A lesion may cover only part of its region; it never reaches past the region.
   * Missing (or undefined for a region): the whole region drops by dropHu.
   */
  lesions?: readonly (LesionBlob | undefined)[];
};

export type LesionBlob = { readonly cx: number; readonly cy: number; readonly cz: number; readonly ax: number; readonly ay: number; readonly az: number; readonly borderMm: number };

/**
 * How much of the lesion's HU drop a point gets: 1 inside, falling smoothly to 0 across a border
 * `borderMm` wide centred on the ellipsoid's surface.
 */
export function lesionWeight(b: LesionBlob, xLeft: number, y: number, z: number): number {
  const dx = (xLeft - b.cx) / b.ax, dy = (y - b.cy) / b.ay, dz = (z - b.cz) / b.az;
  const q = Math.sqrt(dx * dx + dy * dy + dz * dz);
  if (b.borderMm <= 0) return q < 1 ? 1 : 0;
  // distance to the surface in mm, approximately (radius along this direction × (1 − q))
  const radius = Math.sqrt((dx * b.ax) ** 2 + (dy * b.ay) ** 2 + (dz * b.az) ** 2) / Math.max(q, 1e-9);
  const t = 0.5 + ((1 - q) * radius) / b.borderMm;
  if (t <= 0) return 0;
  if (t >= 1) return 1;
  return t * t * (3 - 2 * t);
}

type Ellipsoid = { cx: number; cy: number; cz: number; ax: number; ay: number; az: number };

const BRAIN: Ellipsoid = { cx: 0, cy: -17, cz: 12, ax: 68, ay: 88, az: 64 };
/** Folded cortex: at CT resolution grey matter fills roughly the outer centimetre. */
const CORTEX_MM = 8;
const CSF_MM = 3;
const BONE_MM = 6;
const SCALP_MM = 5;

/** Region shapes (x:y:z semi-axis ratios) scaled so each ellipsoid has the DESIGN §6 volume. */
const REGION_SHAPES: Record<string, [number, number, number]> = {
  C: [0.6, 1, 1.1], L: [0.55, 1.1, 1], IC: [0.3, 1.3, 1.1], I: [0.3, 1.6, 1.3],
  M1: [0.6, 1.3, 1], M2: [0.6, 1.3, 1], M3: [0.6, 1.3, 1], M4: [0.6, 1.3, 1], M5: [0.6, 1.3, 1], M6: [0.6, 1.3, 1],
};

/** Left-side region ellipsoids in priority order (REGION_NAMES order: ganglionic first). */
export const REGION_ELLIPSOIDS: readonly Ellipsoid[] = REGION_ANATOMY.map(({ name, volumeMl, centroid }) => {
  const [rx, ry, rz] = REGION_SHAPES[name]!;
  const k = Math.cbrt((3 * volumeMl * 1000) / (4 * Math.PI * rx * ry * rz));
  return { cx: centroid[0], cy: centroid[1], cz: centroid[2], ax: rx * k, ay: ry * k, az: rz * k };
});

const LEFT_VENTRICLE: Ellipsoid = { cx: -9, cy: -12, cz: 18, ax: 5, ay: 26, az: 9 };
const THIRD_VENTRICLE: Ellipsoid = { cx: 0, cy: -14, cz: 5, ax: 2, ay: 14, az: 9 };
const LEFT_THALAMUS: Ellipsoid = { cx: -11, cy: -18, cz: 7, ax: 7, ay: 10, az: 7 };

/** Squared normalised radius; < 1 inside. `grow` mm is added to every semi-axis. */
function radius2(e: Ellipsoid, x: number, y: number, z: number, grow = 0): number {
  const dx = (x - e.cx) / (e.ax + grow), dy = (y - e.cy) / (e.ay + grow), dz = (z - e.cz) / (e.az + grow);
  return dx * dx + dy * dy + dz * dz;
}

/** Index of the first region containing the left-mirrored point, or −1. */
export function regionAt(xLeft: number, y: number, z: number): number {
  for (let r = 0; r < REGION_ELLIPSOIDS.length; r++) {
    const e = REGION_ELLIPSOIDS[r]!;
    if (Math.abs(xLeft - e.cx) < e.ax && Math.abs(y - e.cy) < e.ay && Math.abs(z - e.cz) < e.az && radius2(e, xLeft, y, z) < 1) return r;
  }
  return -1;
}

/**
 * Mean HU at an MNI point: air, scalp, skull, CSF, then the brain (cortical
 * ribbon, white matter, ventricles, deep grey nuclei, the ASPECTS regions).
 */
export function headHu(p: HeadParams, x: number, y: number, z: number): number {
  if (radius2(BRAIN, x, y, z, CSF_MM + BONE_MM + SCALP_MM) >= 1) return -1000;
  if (radius2(BRAIN, x, y, z, CSF_MM + BONE_MM) >= 1) return p.scalpHu;
  if (radius2(BRAIN, x, y, z, CSF_MM) >= 1) return p.boneHu;
  if (radius2(BRAIN, x, y, z) >= 1) return p.csfHu;

  const xLeft = -Math.abs(x);
  if (radius2(LEFT_VENTRICLE, xLeft, y, z) < 1 || radius2(THIRD_VENTRICLE, x, y, z) < 1) return p.csfHu;
  if (Math.abs(x) < 1.2 && z > 15) return p.csfHu; // interhemispheric fissure

  const inRibbon = radius2(BRAIN, x, y, z, -CORTEX_MM) >= 1;
  const region = regionAt(xLeft, y, z);
  if (region < 0) {
    return inRibbon || radius2(LEFT_THALAMUS, xLeft, y, z) < 1 ? p.greyHu : p.whiteHu;
  }
  const { tissue } = REGION_ANATOMY[region]!;
  const grey = tissue === 'grey' && (region < 4 || inRibbon);
  const side = x < 0 ? 'L' : 'R';
  const blob = p.lesions?.[region];
  const drop = side !== p.hemisphere || p.dropHu[region] === 0 ? 0 : p.dropHu[region]! * (blob ? lesionWeight(blob, xLeft, y, z) : 1);
  // Ischaemic tissue of the region (grey, or the white internal capsule) loses 2–6 HU, and with it
  // much of the grey/white contrast; the white matter under an affected cortex swells less.
  if (grey) return p.greyHu - drop;
  return p.whiteHu - (tissue === 'white' ? drop : 0.4 * drop);
}
