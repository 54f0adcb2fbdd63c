/**
 * The limits of the Hopper kernels hold on every backend: the CPU backend refuses exactly the
 * shapes the GPU refuses, with the same LimitError. Shapes past a limit are described by tensors
 * that only carry a shape (nothing reads q or kCache before the limits are checked), so the test
 * allocates nothing large.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HOPPER_KERNEL_LIMITS } from '../../src/backend/limits.js';
import {
  COMBINE_ROWS_PER_BLOCK,
  HEAD_DIM_K,
  HEAD_DIM_V,
  MAX_SCHEDULER_BATCH,
} from '../../src/config.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import { LimitError } from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { contiguousStrides, HOST, type Tensor } from '../../src/tensor/tensor.js';

/** A bf16 host tensor of `shape` with no storage: enough for every check before the limits. */
function shapeOnly(shape: number[]): Tensor {
  return {
    dtype: 'bf16',
    shape,
    strides: contiguousStrides(shape),
    device: HOST,
    toHost: () => Promise.reject(new Error('not readable')),
    toHostSync: () => {
      throw new Error('not readable');
    },
  };
}

function rejectsLimit(run: () => unknown, argument: string, limit: number): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof LimitError, String(error));
    assert.equal(error.code, 'ERR_LIMIT');
    assert.equal(error.argument, argument);
    assert.ok(error.expected.includes(String(limit)), error.message);
    return true;
  });
}

/** A decode call of b sequences of length 0, with q [b, s_q, h_q, 576] and h_kv KV heads. */
function decode(batch: number, seqlenQ: number, numHeadsQ: number, numHeadsKv: number) {
  const schedule = HostTensor.zeros('int32', [1, 8]);
  return flashMlaWithKvcache(
    shapeOnly([batch, seqlenQ, numHeadsQ, HEAD_DIM_K]),
    shapeOnly([1, 64, numHeadsKv, HEAD_DIM_K]),
    HostTensor.zeros('int32', [batch, 1]),
    HostTensor.zeros('int32', [batch]),
    HEAD_DIM_V,
    schedule,
    HostTensor.zeros('int32', [batch + 1]),
  );
}

test('the CPU backend keeps the Hopper kernels limits', () => {
  assert.deepEqual(cpuBackend.limits, HOPPER_KERNEL_LIMITS);
  assert.deepEqual(HOPPER_KERNEL_LIMITS, {
    maxBatch: MAX_SCHEDULER_BATCH,
    maxRowsPerKvHead: COMBINE_ROWS_PER_BLOCK * 65535,
    maxHeadsKv: 65535,
  });
});

test('getMlaMetadata: batch, rows per KV head and KV heads past the limits', () => {
  const { maxBatch, maxRowsPerKvHead, maxHeadsKv } = cpuBackend.limits;
  const lengths = (b: number) => HostTensor.zeros('int32', [b]);
  assert.equal(getMlaMetadata(lengths(maxBatch), 1, 1).batch, maxBatch);
  rejectsLimit(() => getMlaMetadata(lengths(maxBatch + 1), 1, 1), 'cacheSeqlens', maxBatch);
  rejectsLimit(
    () => getMlaMetadata(lengths(2), maxRowsPerKvHead + 1, 1),
    'numQRowsPerKvHead',
    maxRowsPerKvHead,
  );
  rejectsLimit(() => getMlaMetadata(lengths(2), 1, maxHeadsKv + 1), 'numHeadsK', maxHeadsKv);
});

test('flashMlaWithKvcache: batch, s_q * h_q / h_kv and h_kv past the limits', () => {
  const { maxBatch, maxRowsPerKvHead, maxHeadsKv } = cpuBackend.limits;
  rejectsLimit(() => decode(maxBatch + 1, 1, 1, 1), 'q', maxBatch);
  // 2 query tokens x 131,072 heads sharing one KV head: 262,144 rows.
  rejectsLimit(() => decode(1, 2, 131072, 1), 'q', maxRowsPerKvHead);
  rejectsLimit(() => decode(1, 1, maxHeadsKv + 1, maxHeadsKv + 1), 'kCache', maxHeadsKv);
});
