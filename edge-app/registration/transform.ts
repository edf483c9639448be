import { multiplyAffines } from '../nifti/affine.js';

/** The fields of an elastix TransformParameters file this project reads. */
export type ElastixTransform = {
  kind: 'EulerTransform' | 'AffineTransform';
  parameters: readonly number[];
  centreLps: readonly [number, number, number];
  computeZyx: boolean;
};

/** Parses TransformParameters.0.txt, refusing transforms this project does not produce. Pure. */
export function parseTransformParameters(text: string): ElastixTransform {
  const fields = new Map<string, string[]>();
  for (const match of text.matchAll(/^\s*\((\w+)((?:\s+(?:"[^"]*"|[^\s)]+))*)\s*\)/gm)) {
    fields.set(match[1]!, [...match[2]!.matchAll(/"([^"]*)"|([^\s"]+)/g)].map((v) => v[1] ?? v[2]!));
  }
  const one = (key: string): string => {
    const v = fields.get(key)?.[0];
    if (v === undefined) throw new SyntaxError(`elastix transform: no (${key} …)`);
    return v;
  };
  const numbers = (key: string, count: number): number[] => {
    const v = (fields.get(key) ?? []).map(Number);
    if (v.length !== count || !v.every(Number.isFinite)) throw new SyntaxError(`elastix transform: (${key} …) needs ${count} numbers, has ${JSON.stringify(fields.get(key))}`);
    return v;
  };
  const kind = one('Transform');
  if (kind !== 'EulerTransform' && kind !== 'AffineTransform') throw new SyntaxError(`elastix transform: ${kind} is not supported`);
  const initial = fields.get('InitialTransformParametersFileName')?.[0] ?? 'NoInitialTransform';
  if (initial !== 'NoInitialTransform') throw new SyntaxError(`elastix transform: chained initial transform ${initial} is not supported`);
  return {
    kind,
    parameters: numbers('TransformParameters', kind === 'EulerTransform' ? 6 : 12),
    centreLps: numbers('CenterOfRotationPoint', 3) as [number, number, number],
    computeZyx: fields.get('ComputeZYX')?.[0] === 'true',
  };
}

/**
 * The transform as a row-major 4×4 in ITK's LPS space. elastix maps FIXED
 * points to MOVING points: T(p) = R (p − c) + c + t. Euler angles follow ITK's
 * Euler3DTransform: R = Rz·Rx·Ry, or Rz·Ry·Rx with ComputeZYX. Pure.
 */
export function transformMatrixLps(t: ElastixTransform): number[] {
  let r: number[];
  let translation: number[];
  if (t.kind === 'EulerTransform') {
    const [ax, ay, az, tx, ty, tz] = t.parameters as number[];
    const rx = [1, 0, 0, 0, Math.cos(ax!), -Math.sin(ax!), 0, Math.sin(ax!), Math.cos(ax!)];
    const ry = [Math.cos(ay!), 0, Math.sin(ay!), 0, 1, 0, -Math.sin(ay!), 0, Math.cos(ay!)];
    const rz = [Math.cos(az!), -Math.sin(az!), 0, Math.sin(az!), Math.cos(az!), 0, 0, 0, 1];
    r = t.computeZyx ? mul3(mul3(rz, ry), rx) : mul3(mul3(rz, rx), ry);
    translation = [tx!, ty!, tz!];
  } else {
    r = t.parameters.slice(0, 9);
    translation = t.parameters.slice(9, 12);
  }
  const c = t.centreLps;
  const out = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) out[row * 4 + col] = r[row * 3 + col]!;
    out[row * 4 + 3] = c[row]! + translation[row]! - (r[row * 3]! * c[0] + r[row * 3 + 1]! * c[1] + r[row * 3 + 2]! * c[2]);
  }
  return out;
}

/** LPS ↔ RAS+ (its own inverse): x and y change sign. */
const FLIP = [-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];

/** An LPS → LPS matrix as the same map between RAS+ worlds. Pure. */
export function lpsToRas(m: readonly number[]): number[] {
  return multiplyAffines(multiplyAffines(FLIP, m), FLIP);
}

export function rasToLps(p: readonly [number, number, number]): [number, number, number] {
  return [-p[0], -p[1], p[2]];
}

function mul3(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(9).fill(0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) out[r * 3 + c]! += a[r * 3 + k]! * b[k * 3 + c]!;
  return out;
}
