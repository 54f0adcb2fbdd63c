/**
 * The metadata getMlaMetadata returns is accepted as the object itself or as FlashMLA's two
 * tensors, recomputed in place with `into`, and refused where it does not fit the call.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { MetadataMismatchError, OptionError } from '../../src/errors.js';
import { computeTileSchedule, fixedOverheadBlocksFor } from '../../src/scheduler.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { generateProblem } from '../../src/verify/problems.js';

const p = generateProblem(
  { batch: 3, seqlenQ: 2, numHeadsQ: 8, numHeadsKv: 2, meanLength: 150, varlen: 'normal' },
  new Random(21),
);
const rows = (2 * 8) / 2;
const decode = (...schedule: [unknown] | [unknown, unknown]) =>
  (flashMlaWithKvcache as (...args: unknown[]) => { out: HostTensor; lse: HostTensor })(
    p.q,
    p.kCache,
    p.blockTable,
    p.cacheSeqlens,
    HEAD_DIM_V,
    ...schedule,
    { causal: true },
  );

test('the MlaMetadata object and its two tensors give bitwise-equal results', () => {
  const metadata = getMlaMetadata(p.cacheSeqlens, rows, 2);
  const fromObject = flashMlaWithKvcache(
    p.q,
    p.kCache,
    p.blockTable,
    p.cacheSeqlens,
    HEAD_DIM_V,
    metadata,
    { causal: true },
  );
  const fromTensors = decode(metadata.tileSchedulerMetadata, metadata.numSplits);
  assert.deepEqual(fromObject.out.data, fromTensors.out.data);
  assert.deepEqual(fromObject.lse.data, fromTensors.lse.data);
});

test('after the object, the options come next: an eighth argument is an error', () => {
  const metadata = getMlaMetadata(p.cacheSeqlens, rows, 2);
  assert.throws(
    () => decode(metadata, metadata.numSplits),
    (e: unknown) => e instanceof OptionError && e.argument === 'options',
  );
});

test('metadata that does not fit the call names the object', () => {
  const lengths = HostTensor.fromValues('int32', [2], [10, 20]);
  assert.throws(
    () => decode(getMlaMetadata(lengths, rows, 2)),
    (e: unknown) =>
      e instanceof MetadataMismatchError && e.argument === 'metadata' && /b = 3/.test(e.message),
  );
  assert.throws(
    () => decode(getMlaMetadata(p.cacheSeqlens, rows, 1)),
    (e: unknown) => e instanceof MetadataMismatchError && e.argument === 'metadata',
  );
  const disposed = getMlaMetadata(p.cacheSeqlens, rows, 2);
  disposed.dispose();
  assert.throws(
    () => decode(disposed),
    (e: unknown) => e instanceof MetadataMismatchError && /disposed/.test(e.message),
  );
});

test('into: the schedule is recomputed in place for new lengths', () => {
  const lengths = HostTensor.fromValues('int32', [3], [150, 10, 300]);
  const metadata = getMlaMetadata(lengths, rows, 2);
  const { tileSchedulerMetadata, numSplits } = metadata;
  lengths.set(1000, 0);
  lengths.set(0, 2);
  assert.equal(getMlaMetadata(lengths, rows, 2, { into: metadata }), metadata);
  assert.equal(metadata.tileSchedulerMetadata, tileSchedulerMetadata, 'the same tensors');
  assert.equal(metadata.numSplits, numSplits);
  const expected = computeTileSchedule(
    [1000, 10, 0],
    metadata.numSmParts,
    undefined,
    fixedOverheadBlocksFor(rows, 3),
  );
  assert.deepEqual(
    metadata.tileSchedulerMetadata.toHostSync().data,
    expected.tileSchedulerMetadata,
  );
  assert.deepEqual(metadata.numSplits.toHostSync().data, expected.numSplits);
});

test('the CPU backend schedules with the overhead fixedOverheadBlocksFor picks', () => {
  // 16 sequences of ~1000 tokens, one row tile per KV head: overhead 3, which cuts them into
  // 114 pieces where 5 would cut 88, so the check below fails for the wrong overhead.
  const values = Array.from({ length: 16 }, (_, i) => 1000 + 37 * i);
  const metadata = getMlaMetadata(HostTensor.fromValues('int32', [16], values), 16, 1);
  const overhead = fixedOverheadBlocksFor(16, 16);
  assert.equal(overhead, 3);
  const expected = computeTileSchedule(values, metadata.numSmParts, undefined, overhead);
  assert.equal(expected.numSplits[16], 114);
  assert.equal(computeTileSchedule(values, metadata.numSmParts, undefined, 5).numSplits[16], 88);
  assert.deepEqual(metadata.numSplits.toHostSync().data, expected.numSplits);
  assert.deepEqual(
    metadata.tileSchedulerMetadata.toHostSync().data,
    expected.tileSchedulerMetadata,
  );
});

test('into: metadata of another batch or head layout, or not metadata at all', () => {
  const lengths = HostTensor.fromValues('int32', [3], [150, 10, 300]);
  const other = getMlaMetadata(HostTensor.fromValues('int32', [2], [1, 2]), rows, 2);
  assert.throws(
    () => getMlaMetadata(lengths, rows, 2, { into: other }),
    (e: unknown) => e instanceof MetadataMismatchError && e.argument === 'into',
  );
  assert.throws(
    () => getMlaMetadata(lengths, rows * 2, 2, { into: getMlaMetadata(lengths, rows, 2) }),
    (e: unknown) => e instanceof MetadataMismatchError && e.argument === 'into',
  );
  assert.throws(
    () =>
      getMlaMetadata(lengths, rows, 2, {
        into: { tileSchedulerMetadata: other.tileSchedulerMetadata } as never,
      }),
    (e: unknown) => e instanceof OptionError && e.argument === 'into',
  );
});
