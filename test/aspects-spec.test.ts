import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ASPECTS_ARCHITECTURE,
  ASPECTS_REGIONS,
  DEFAULT_ASPECTS_GRID,
  GridInvalid,
  aspectsTensorSpec,
  checkAspectsWeights,
  fc1InputSize,
  flattenIndex,
  initialAspectsWeights,
  mulberry32,
  validateGrid,
} from '../edge-app/aspects/spec.js';

/** The reference mulberry32, written the way it is usually published. */
function referenceMulberry32(a: number) {
  return function () {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('aspects spec', () => {
  it('names the architecture and regions of MODEL.md', () => {
    assert.equal(ASPECTS_ARCHITECTURE, 'aspects-cnn/v2');
    assert.deepEqual([...ASPECTS_REGIONS], ['C', 'L', 'IC', 'I', 'M1', 'M2', 'M3', 'M4', 'M5', 'M6']);
  });

  it('lists tensors in MODEL.md order with the default shapes', () => {
    assert.deepEqual(
      aspectsTensorSpec(DEFAULT_ASPECTS_GRID).map(({ name, shape }) => [name, [...shape]]),
      [
        ['conv1.weight', [8, 2, 3, 3, 3]],
        ['conv1.bias', [8]],
        ['conv2.weight', [16, 8, 3, 3, 3]],
        ['conv2.bias', [16]],
        ['conv3.weight', [32, 16, 3, 3, 3]],
        ['conv3.bias', [32]],
        ['fc1.weight', [64, 1152]],
        ['fc1.bias', [64]],
        ['fc2.weight', [10, 64]],
        ['fc2.bias', [10]],
      ],
    );
    assert.equal(fc1InputSize({ depth: 32, height: 96, width: 96 }), 4 * 12 * 6 * 32);
  });

  it('refuses grids that three poolings cannot halve', () => {
    assert.throws(() => validateGrid({ depth: 12, height: 48, width: 48 }), (e: unknown) => e instanceof GridInvalid && /depth \(D\) = 12/.test(e.message));
    assert.throws(() => validateGrid({ depth: 16, height: 48, width: 40 }), /width \(W\) = 40 must be a positive multiple of 16/);
    assert.throws(() => aspectsTensorSpec({ depth: 0, height: 8, width: 16 }), GridInvalid);
    assert.doesNotThrow(() => validateGrid({ depth: 8, height: 8, width: 16 }));
  });

  it('flattens channels-last', () => {
    const grid = DEFAULT_ASPECTS_GRID; // features [2, 6, 3, 32]
    assert.equal(flattenIndex(grid, 0, 0, 0, 1), 1);
    assert.equal(flattenIndex(grid, 0, 0, 1, 0), 32);
    assert.equal(flattenIndex(grid, 0, 1, 0, 0), 96);
    assert.equal(flattenIndex(grid, 1, 0, 0, 0), 576);
    assert.equal(flattenIndex(grid, 1, 5, 2, 31), 1151);
  });

  it('mulberry32 matches the published reference', () => {
    for (const seed of [0, 1, 42, 0xdeadbeef, -7]) {
      const a = mulberry32(seed);
      const b = referenceMulberry32(seed);
      for (let i = 0; i < 1000; i++) assert.equal(a(), b());
    }
  });

  it('initialises deterministically, He-uniform kernels, zero biases, one stream in tensor order', () => {
    const grid = DEFAULT_ASPECTS_GRID;
    const a = initialAspectsWeights(7, grid);
    const b = initialAspectsWeights(7, grid);
    const c = initialAspectsWeights(8, grid);
    checkAspectsWeights(a, grid);
    for (const { name } of aspectsTensorSpec(grid)) assert.deepEqual(a.get(name)!.data, b.get(name)!.data, name);
    assert.notDeepEqual(a.get('conv1.weight')!.data, c.get('conv1.weight')!.data);

    const reference = referenceMulberry32(7);
    for (const { name, shape } of aspectsTensorSpec(grid)) {
      const t = a.get(name)!;
      if (name.endsWith('.bias')) {
        assert.ok(t.data.every((v) => v === 0), `${name} is zero`);
        continue;
      }
      const fanIn = shape.slice(1).reduce((x, y) => x * y, 1);
      const bound = Math.sqrt(6 / fanIn);
      let max = 0;
      let sum = 0;
      for (let i = 0; i < t.data.length; i++) {
        assert.equal(t.data[i], Math.fround((2 * reference() - 1) * bound), `${name}[${i}]`);
        max = Math.max(max, Math.abs(t.data[i]!));
        sum += t.data[i]!;
      }
      assert.ok(max <= bound && max > 0.9 * bound, `${name}: max |w| ${max} vs bound ${bound}`);
      assert.ok(Math.abs(sum / t.data.length) < 0.1 * bound, `${name}: mean near 0`);
    }
    assert.equal(a.get('conv1.weight')!.data.length, 8 * 2 * 27);
    assert.ok(Math.abs(Math.sqrt(6 / 54) - 0.3333) < 1e-3); // conv1 bound of MODEL.md
  });

  it('checkAspectsWeights names what is wrong', () => {
    const w = new Map(initialAspectsWeights(1));
    w.delete('fc2.bias');
    w.set('fc1.weight', { shape: [64, 10], data: new Float32Array(640) });
    assert.throws(() => checkAspectsWeights(w), /fc1\.weight has shape \[64, 10\], expected \[64, 1152\]; missing fc2\.bias/);
  });
});
