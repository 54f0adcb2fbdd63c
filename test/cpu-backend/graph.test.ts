/**
 * A captured decode step on the CPU backend: nothing runs while recording, and each replay runs
 * the step again on the values written in place since (new lengths, new block-table rows).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import { DisposedError } from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { judgeDecode } from '../../src/verify/precision.js';
import { generateProblem } from '../../src/verify/problems.js';

test('capture a step (metadata into + two layers), replay it after writing new lengths', () => {
  const random = new Random(31);
  const batch = 3;
  // Full blocks and no spare ones: every cache row holds data, whatever lengths come later.
  const config = { batch, seqlenQ: 2, numHeadsQ: 8, numHeadsKv: 1, meanLength: 256 };
  const layers = [0, 1].map(() =>
    generateProblem({ ...config, causal: true, spareBlocks: 0 }, random),
  );
  // Both layers share the lengths and the block table, as the layers of one model do.
  const { blockTable, cacheSeqlens } = layers[0];
  const capacity = blockTable.shape[1] * 64;
  const metadata = getMlaMetadata(cacheSeqlens, 16, 1);
  const outputs = layers.map(() => ({
    out: HostTensor.full('bf16', [batch, 2, 8, HEAD_DIM_V], Number.NaN),
    lse: HostTensor.full('float32', [batch, 8, 2], Number.NaN),
  }));
  const step = cpuBackend.captureGraph(() => {
    getMlaMetadata(cacheSeqlens, 16, 1, { into: metadata });
    layers.forEach((layer, i) => {
      flashMlaWithKvcache(layer.q, layer.kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, {
        causal: true,
        ...outputs[i],
      });
    });
  });
  assert.ok(Number.isNaN(outputs[0].lse.get(0, 0, 0)), 'nothing ran while recording');
  for (const lengths of [
    [capacity, 0, 5],
    [1, capacity - 1, 64],
  ]) {
    cpuBackend.write(cacheSeqlens, HostTensor.fromValues('int32', [batch], lengths));
    step.replay();
    layers.forEach((layer, i) => {
      const verdict = judgeDecode(outputs[i], { ...layer, blockTable, cacheSeqlens });
      assert.ok(
        verdict.ok,
        `lengths [${lengths}], layer ${i}: ${verdict.report.failures.join('\n')}`,
      );
      assert.ok(Array.from(outputs[i].out.toFloat64Array()).every(Number.isFinite));
    });
  }
  step.dispose();
  assert.throws(() => step.replay(), DisposedError);
});

test('write checks the target and the source', () => {
  const target = HostTensor.zeros('int32', [3]);
  assert.throws(() => cpuBackend.write(target, HostTensor.zeros('int32', [4])), /\[3\]/);
  assert.throws(() => cpuBackend.write(target, HostTensor.zeros('float32', [3])), /int32/);
  cpuBackend.write(target, HostTensor.fromValues('int32', [3], [7, 8, 9]));
  assert.deepEqual(Array.from(target.data), [7, 8, 9]);
});
