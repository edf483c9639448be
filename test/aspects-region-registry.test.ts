/**
 * The app ids a plan can name for ASPECTS: `aspects-cnn` (the default job's)
 * and `aspects-region` run aspects-region/v3; `aspects-cnn-v2` keeps the grid
 * CNN; a v2 option on a v3 id is refused by the schema, naming it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apps } from '../edge-app/registry.js';
import { REGION_ARCHITECTURE, initialRegionWeights, regionTensorSpec } from '../edge-app/aspects/region-spec.js';
import { ASPECTS_ARCHITECTURE } from '../edge-app/aspects/spec.js';

describe('ASPECTS app ids', () => {
  for (const id of ['aspects-cnn', 'aspects-region']) {
    it(`${id} is aspects-region/v3 with the documented defaults`, async () => {
      const options = apps.optionsSchema(id).parse({});
      assert.deepEqual(options, { hidden: 32, batchSize: 8, learningRate: 3e-3, validationFraction: 0.2, registration: 'rigid' });
      assert.equal(apps.architecture(id, options), REGION_ARCHITECTURE);
      assert.deepEqual(apps.tensorSpec(id, options), regionTensorSpec(32));
      const w = await apps.initialWeights(id, options, 9);
      assert.deepEqual([...w.get('fc1.weight')!.data], [...initialRegionWeights(9).get('fc1.weight')!.data]);
      const small = apps.optionsSchema(id).parse({ hidden: 8, atlasFile: 'atlas/aspects.nii.gz' });
      assert.deepEqual(apps.tensorSpec(id, small).find((s) => s.name === 'region.embedding')!.shape, [10, 8]);
    });
  }

  it('a grid option under aspects-cnn is refused; aspects-cnn-v2 still takes it', () => {
    const bad = apps.optionsSchema('aspects-cnn').safeParse({ grid: { depth: 8, height: 16, width: 16 } });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /grid/);
    const v2 = apps.optionsSchema('aspects-cnn-v2').parse({ grid: { depth: 8, height: 16, width: 16 } });
    assert.equal(apps.architecture('aspects-cnn-v2', v2), ASPECTS_ARCHITECTURE);
  });
});
