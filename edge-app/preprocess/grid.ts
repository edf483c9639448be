/** The model grid of MODEL.md "Preprocessing": a fixed box in world RAS+ mm. */

export type Grid = { readonly depth: number; readonly height: number; readonly width: number };

export const DEFAULT_GRID: Grid = Object.freeze({ depth: 16, height: 48, width: 48 });

/** Half-open world box [min, max) in mm; x along width, y along height, z along depth. */
export const GRID_BOX = Object.freeze({
  x: Object.freeze([-72, 72] as const),
  y: Object.freeze([-104, 88] as const),
  z: Object.freeze([-20, 76] as const),
});

/** Brain window of MODEL.md step 3 and the normalisation of step 5. */
export const HU_WINDOW = Object.freeze([0, 80] as const);
export const normaliseHu = (hu: number): number => (hu - 40) / 40;

export function assertGrid(grid: Grid): void {
  const ok = [grid.depth, grid.height, grid.width].every((n) => Number.isInteger(n) && n > 0) && grid.width % 2 === 0;
  if (!ok) throw new RangeError(`bad grid ${JSON.stringify(grid)}: positive integers with an even width expected`);
}

/** Centre of grid cell (d, h, w) in world mm. */
export function cellCentre(grid: Grid, d: number, h: number, w: number): [number, number, number] {
  const { x, y, z } = GRID_BOX;
  return [
    x[0] + ((w + 0.5) * (x[1] - x[0])) / grid.width,
    y[0] + ((h + 0.5) * (y[1] - y[0])) / grid.height,
    z[0] + ((d + 0.5) * (z[1] - z[0])) / grid.depth,
  ];
}
