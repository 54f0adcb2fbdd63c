/**
 * Unknown option keys are errors, everywhere the public API takes an options object: a
 * misspelt key (`casual`, `softmax_scale`) must never be ignored silently.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { openBackend } from '../../src/api/open-backend.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import type { CudaDevice } from '../../src/cuda/device.js';
import { CudaEvent } from '../../src/cuda/event.js';
import { CudaStream } from '../../src/cuda/stream.js';
import { OptionError } from '../../src/errors.js';
import { Random } from '../../src/tensor/random.js';
import { generateProblem } from '../../src/verify/problems.js';

/** Asserts `run` throws an OptionError that names `key` and lists every valid key. */
function rejectsKey(run: () => unknown, key: string, validKeys: readonly string[]): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof OptionError, String(error));
    assert.equal(error.code, 'ERR_OPTION');
    assert.equal(error.argument, 'options');
    assert.equal(error.actual, `unknown key ${JSON.stringify(key)}`);
    for (const valid of validKeys) assert.ok(error.expected.includes(valid), error.message);
    return true;
  });
}

const problem = generateProblem(
  { batch: 2, seqlenQ: 1, numHeadsQ: 4, numHeadsKv: 1, meanLength: 40 },
  new Random(9),
);
const { q, kCache, blockTable, cacheSeqlens } = problem;

test('flashMlaWithKvcache: casual, softmax_scale and any other unknown key', () => {
  const metadata = getMlaMetadata(cacheSeqlens, 4, 1);
  const valid = ['softmaxScale', 'causal', 'out', 'lse', 'validateValues', 'stream'];
  for (const key of ['casual', 'softmax_scale', 'Causal']) {
    const options = { [key]: true } as object;
    rejectsKey(
      () => flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, options),
      key,
      valid,
    );
    rejectsKey(
      () =>
        flashMlaWithKvcache(
          q,
          kCache,
          blockTable,
          cacheSeqlens,
          HEAD_DIM_V,
          metadata.tileSchedulerMetadata,
          metadata.numSplits,
          options,
        ),
      key,
      valid,
    );
  }
  assert.throws(
    () =>
      flashMlaWithKvcache(
        q,
        kCache,
        blockTable,
        cacheSeqlens,
        HEAD_DIM_V,
        metadata,
        3 as unknown as object,
      ),
    (e: unknown) => e instanceof OptionError && e.actual === '3',
  );
});

test('getMlaMetadata: unknown keys', () => {
  rejectsKey(() => getMlaMetadata(cacheSeqlens, 4, 1, { stram: undefined } as object), 'stram', [
    'stream',
    'into',
  ]);
});

test('openBackend: unknown keys', () => {
  rejectsKey(() => openBackend({ backend: 'cpu', devise: 1 } as object), 'devise', [
    'backend',
    'device',
    'onFallback',
  ]);
});

test('Backend.time and Backend.captureGraph: unknown keys', () => {
  rejectsKey(
    () => cpuBackend.time(() => {}, { warmup: 1, repeats: 1, repeat: 3 } as never),
    'repeat',
    ['warmup', 'repeats'],
  );
  rejectsKey(() => cpuBackend.captureGraph(() => {}, { steam: 1 } as object), 'steam', ['stream']);
});

test('CudaStream.create and CudaEvent.create: unknown keys, before any driver call', () => {
  const noDevice = undefined as unknown as CudaDevice;
  rejectsKey(() => CudaStream.create(noDevice, { nonblocking: true } as object), 'nonblocking', [
    'nonBlocking',
  ]);
  rejectsKey(() => CudaEvent.create(noDevice, { timed: false } as object), 'timed', ['timing']);
});

test('keys with undefined values, and options that are undefined, are fine', () => {
  const metadata = getMlaMetadata(cacheSeqlens, 4, 1, { stream: undefined, into: undefined });
  flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, {
    causal: undefined,
  });
  flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, undefined);
  assert.equal(openBackend({ backend: 'cpu', device: undefined }).kind, 'cpu');
});
