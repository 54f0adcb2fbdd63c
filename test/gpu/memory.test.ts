/**
 * Device memory on the GPU: the natural loop (outputs returned by every call and metadata every
 * step, nothing disposed) stays within a fixed bound of the memory pool, memory freed in stream
 * order is reused while results stay right (no buffer is handed out again while a kernel still
 * uses it), and tensors used on a second stream are freed after that stream's work.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { CudaStream } from '../../src/cuda/stream.js';
import type { CudaBackend } from '../../src/cuda-backend/backend.js';
import type { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { type DeviceProblem, generateOnGpu, gpuTest, SUITE_SEED } from './support.js';

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function smallProblem(backend: CudaBackend, seed: number): DeviceProblem {
  return generateOnGpu(
    backend,
    {
      batch: 16,
      seqlenQ: 1,
      numHeadsQ: 16,
      numHeadsKv: 1,
      meanLength: 1024,
      varlen: 'normal',
      causal: true,
      dtype: 'bf16',
    },
    new Random(seed),
  );
}

function decode(problem: DeviceProblem, stream?: CudaStream) {
  const metadata = getMlaMetadata(problem.cacheSeqlens, 16, 1, { stream });
  return flashMlaWithKvcache(
    problem.q,
    problem.kCache,
    problem.blockTable,
    problem.cacheSeqlens,
    HEAD_DIM_V,
    metadata.tileSchedulerMetadata,
    metadata.numSplits,
    { causal: true, stream },
  );
}

function sameBits(a: HostTensor, b: HostTensor): boolean {
  return a.data.length === b.data.length && a.data.every((value, i) => value === b.data[i]);
}

gpuTest(
  'the natural loop, nothing disposed, stays within a fixed bound of the pool',
  async (backend) => {
    const problem = smallProblem(backend, SUITE_SEED);
    const device = backend.device;
    const outputBytes = 16 * 16 * HEAD_DIM_V * 2 + 16 * 16 * 4;
    // Three collections' worth of garbage: the loop must go past the collector's trigger (1/64
    // of the device's memory allocated and not disposed) several times.
    const calls = Math.ceil((3 * device.totalMemoryBytes) / 64 / outputBytes);
    device.synchronize();
    const usedBefore = device.memoryPoolUsage().usedBytes;
    let peak = 0;
    for (let call = 0; call < calls; call++) {
      decode(problem);
      if (call % 50 === 49) {
        await yieldToEventLoop();
        peak = Math.max(peak, device.memoryPoolUsage().usedBytes - usedBefore);
      }
    }
    const bound = (2 * device.totalMemoryBytes) / 64;
    assert.ok(
      peak < bound,
      `${calls} calls (${((calls * outputBytes) / 2 ** 30).toFixed(1)} GiB of outputs): ${(peak / 2 ** 30).toFixed(2)} GiB in use at the peak, bound ${(bound / 2 ** 30).toFixed(2)} GiB`,
    );
    problem.dispose();
  },
);

gpuTest(
  'memory reused in stream order never changes a result still being computed',
  async (backend) => {
    const problem = smallProblem(backend, SUITE_SEED + 1);
    const first = decode(problem);
    const expected = { out: first.out.toHostSync(), lse: first.lse.toHostSync() };
    const kept: ReturnType<typeof decode>[] = [];
    for (let call = 0; call < 400; call++) {
      const result = decode(problem);
      if (call % 10 === 0) kept.push(result);
      else if (call % 3 === 0) {
        result.out.dispose();
        result.lse.dispose();
      }
      if (call % 100 === 99) await yieldToEventLoop();
    }
    for (const [index, result] of kept.entries()) {
      assert.ok(
        sameBits(await result.out.toHost(), expected.out),
        `out of kept call ${index * 10}`,
      );
      assert.ok(
        sameBits(await result.lse.toHost(), expected.lse),
        `lse of kept call ${index * 10}`,
      );
    }
    problem.dispose();
  },
);

gpuTest(
  'tensors used on a second stream are right there, and freed after its work',
  async (backend) => {
    const problem = smallProblem(backend, SUITE_SEED + 2);
    const expected = decode(problem).out.toHostSync();
    const stream = CudaStream.create(backend.device, { nonBlocking: true });
    const before = backend.device.memoryPoolUsage().usedBytes;
    for (let call = 0; call < 200; call++) {
      const { out, lse } = decode(problem, stream);
      if (call % 50 === 0) assert.ok(sameBits(await out.toHost(stream), expected), `call ${call}`);
      out.dispose();
      lse.dispose();
    }
    await stream.wait();
    const after = backend.device.memoryPoolUsage().usedBytes;
    assert.ok(after - before < 64 * 2 ** 20, `${after - before} bytes still in use`);
    stream.dispose();
    problem.dispose();
  },
);

gpuTest('dropped tensors are freed once collected, without dispose()', async (backend) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const device = backend.device;
  device.synchronize();
  const before = device.memoryPoolUsage().usedBytes;
  (() => {
    for (let i = 0; i < 64; i++) backend.empty('float32', [2 ** 20]);
  })();
  device.synchronize();
  assert.ok(device.memoryPoolUsage().usedBytes - before >= 64 * 2 ** 22, 'allocated');
  for (let attempt = 0; attempt < 50; attempt++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    device.synchronize();
    if (device.memoryPoolUsage().usedBytes - before < 2 ** 22) break;
  }
  assert.ok(
    device.memoryPoolUsage().usedBytes - before < 2 ** 22,
    `${device.memoryPoolUsage().usedBytes - before} bytes of 256 MiB dropped still in use`,
  );
});
