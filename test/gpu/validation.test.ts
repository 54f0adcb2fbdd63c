/** The argument checks only device tensors can fail: addresses the kernels cannot load from. */
import assert from 'node:assert/strict';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { StrideError } from '../../src/errors.js';
import { Random } from '../../src/tensor/random.js';
import { generateProblem } from '../../src/verify/problems.js';
import { gpuTest, uploadProblem } from './support.js';

gpuTest(
  'q, kCache or out at an address that is not 16-byte aligned is a StrideError',
  (backend) => {
    const problem = uploadProblem(
      backend,
      generateProblem(
        { batch: 2, seqlenQ: 1, numHeadsQ: 4, numHeadsKv: 1, meanLength: 70 },
        new Random(3),
      ),
    );
    const metadata = getMlaMetadata(problem.cacheSeqlens, 4, 1);
    // The same tensors viewed 8 bytes (4 elements) further into a larger buffer.
    const shifted = (shape: readonly number[]) => {
      const numel = shape.reduce((a, b) => a * b, 1);
      const buffer = backend.empty('bf16', [numel + 8]);
      const view = DeviceTensor.wrap(backend.device, buffer.ptr + 8n, 'bf16', [...shape]);
      return { buffer, view };
    };
    const outShape = [...problem.q.shape.slice(0, 3), HEAD_DIM_V];
    for (const name of ['q', 'kCache', 'out'] as const) {
      const { buffer, view } = shifted(name === 'out' ? outShape : problem[name].shape);
      const args = { q: problem.q, kCache: problem.kCache, [name]: view };
      assert.throws(
        () =>
          flashMlaWithKvcache(
            args.q,
            args.kCache,
            problem.blockTable,
            problem.cacheSeqlens,
            HEAD_DIM_V,
            metadata,
            name === 'out' ? { out: view } : undefined,
          ),
        (e: unknown) =>
          e instanceof StrideError && e.argument === name && /16-byte/.test(e.message),
      );
      buffer.dispose();
    }
    metadata.dispose();
    problem.dispose();
  },
);
