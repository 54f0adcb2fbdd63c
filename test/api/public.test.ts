/** The package's public surface: what a user imports, and the backend choice without a GPU. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as flashmla from '../../src/index.js';

test('the entry point exports the API, tensors, errors and the CUDA layer, and no test fixtures', () => {
  for (const name of [
    'getMlaMetadata',
    'flashMlaWithKvcache',
    'openBackend',
    'HostTensor',
    'DeviceTensor',
    'CudaDevice',
    'CudaStream',
    'referenceDecode',
    'GpuUnavailableError',
    'CudaError',
    'MlaMetadata',
    'probeCuda',
  ]) {
    assert.ok(name in flashmla, name);
  }
  assert.equal(flashmla.HEAD_DIM_K, 576);
  for (const name of ['Random', 'generateProblem', 'pairwiseDesign', 'captureGraph']) {
    assert.ok(!(name in flashmla), `${name} is not part of the public API`);
  }
});

test('backend choice: an explicit backend wins, FLASHMLA_BACKEND replaces the default, bad names are errors', () => {
  const previous = process.env.FLASHMLA_BACKEND;
  try {
    delete process.env.FLASHMLA_BACKEND;
    assert.equal(flashmla.openBackend({ backend: 'cpu' }).kind, 'cpu');
    assert.throws(() => flashmla.openBackend({ backend: 'tpu' as 'cpu' }), flashmla.OptionError);
    process.env.FLASHMLA_BACKEND = 'cpu';
    assert.equal(flashmla.openBackend().kind, 'cpu', 'the environment replaces the default');
    process.env.FLASHMLA_BACKEND = 'cuda';
    assert.equal(
      flashmla.openBackend({ backend: 'cpu' }).kind,
      'cpu',
      'an explicit choice wins over the environment',
    );
    process.env.FLASHMLA_BACKEND = 'gpu';
    for (const options of [{}, { backend: 'cpu' as const }]) {
      assert.throws(
        () => flashmla.openBackend(options),
        (e: unknown) =>
          e instanceof flashmla.OptionError &&
          e.argument === 'FLASHMLA_BACKEND' &&
          e.code === 'ERR_OPTION',
      );
    }
  } finally {
    if (previous === undefined) delete process.env.FLASHMLA_BACKEND;
    else process.env.FLASHMLA_BACKEND = previous;
  }
});

test("where no GPU can run, 'auto' falls back to the CPU with the reason and 'cuda' throws it", {
  skip: flashmla.probeCuda().ok ? 'a GPU is usable here' : false,
}, () => {
  const reasons: string[] = [];
  const backend = flashmla.openBackend({
    backend: 'auto',
    onFallback: (reason) => reasons.push(reason),
  });
  assert.equal(backend.kind, 'cpu');
  assert.equal(reasons.length, 1);
  assert.ok(reasons[0].length > 10, reasons[0]);
  assert.throws(() => flashmla.openBackend({ backend: 'cuda' }), flashmla.GpuUnavailableError);
  assert.throws(() => backend.wrap(0x1000n, 'bf16', [4]), flashmla.OptionError);
});
