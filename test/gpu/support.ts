/**
 * What the GPU tests share: the CUDA backend (or the reason to skip), problems placed on the
 * GPU (uploaded from the host, or generated on the GPU for shapes too large for the CPU), decode
 * with NaN-prefilled outputs followed by guard bytes, and the GPU oracle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api.js';
import { HEAD_DIM_K, HEAD_DIM_V, PAGE_BLOCK_SIZE } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { copyDeviceToHostSync, DeviceBuffer, fill, subspan } from '../../src/cuda/memory.js';
import { GpuUnavailableError } from '../../src/errors.js';
import { CudaBackend } from '../../src/kernels/cuda-backend.js';
import { launchFillNormal, launchReference } from '../../src/kernels/launch.js';
import type { MlaMetadata } from '../../src/metadata.js';
import { bytesPerElement } from '../../src/tensor/dtype.js';
import { float32ToBf16Bits, float32ToFp16Bits } from '../../src/tensor/half.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { numel } from '../../src/tensor/tensor.js';
import type { DecodeShape } from '../../src/validate.js';
import { checkDecodeArguments } from '../../src/validate.js';
import { drawLengths, type Problem, type Varlen } from '../../src/verify/problems.js';

function openGpu(): { backend: CudaBackend; skip: false } | { backend: null; skip: string } {
  try {
    return { backend: CudaBackend.open(0), skip: false };
  } catch (error) {
    if (error instanceof GpuUnavailableError) return { backend: null, skip: `no usable GPU: ${error.reason}` };
    throw error;
  }
}

const gpu = openGpu();

/** A test that runs on the GPU, or skips with the reason there is none. */
export function gpuTest(name: string, body: (backend: CudaBackend) => void | Promise<void>): void {
  test(name, { skip: gpu.skip }, () => body(gpu.backend as CudaBackend));
}

/** Each run draws fresh data; the seed is printed with every failure. */
export const SUITE_SEED = Number(process.env.FLASHMLA_TEST_SEED ?? Random.freshSeed());

export interface DeviceProblem {
  q: DeviceTensor;
  kCache: DeviceTensor;
  blockTable: DeviceTensor;
  cacheSeqlens: DeviceTensor;
  softmaxScale: number;
  causal: boolean;
  lengths: Int32Array;
  dispose(): void;
}

/** Uploads a host problem, keeping its strides (and NaN padding). */
export function uploadProblem(backend: CudaBackend, problem: Problem): DeviceProblem {
  const tensors = [problem.q, problem.kCache, problem.blockTable, problem.cacheSeqlens].map((t) => backend.upload(t));
  const [q, kCache, blockTable, cacheSeqlens] = tensors;
  return {
    q,
    kCache,
    blockTable,
    cacheSeqlens,
    softmaxScale: problem.softmaxScale,
    causal: problem.causal,
    lengths: problem.lengths,
    dispose: () => {
      for (const t of tensors) t.dispose();
    },
  };
}

/** An output tensor NaN-filled, followed by guard bytes that must survive the call. */
export class GuardedOutput {
  static readonly GUARD_BYTES = 256;
  static readonly GUARD_PATTERN = 0xa5;
  readonly tensor: DeviceTensor;
  private readonly buffer: DeviceBuffer;
  private readonly dataBytes: number;

  constructor(backend: CudaBackend, dtype: 'bf16' | 'fp16' | 'float32', shape: number[]) {
    this.dataBytes = numel(shape) * bytesPerElement(dtype);
    this.buffer = DeviceBuffer.alloc(backend.device, this.dataBytes + GuardedOutput.GUARD_BYTES);
    fill(subspan(this.buffer, this.dataBytes, GuardedOutput.GUARD_BYTES), 8, GuardedOutput.GUARD_PATTERN, backend.stream);
    this.tensor = DeviceTensor.adopt(this.buffer, dtype, shape);
    this.tensor.fillNaN(backend.stream);
  }

  assertGuardIntact(label: string): void {
    const guard = new Uint8Array(GuardedOutput.GUARD_BYTES);
    copyDeviceToHostSync(guard, subspan(this.buffer, this.dataBytes, GuardedOutput.GUARD_BYTES));
    assert.ok(guard.every((b) => b === GuardedOutput.GUARD_PATTERN), `${label}: guard bytes after the output were overwritten`);
  }

  dispose(): void {
    this.tensor.dispose();
  }
}

export interface GpuDecodeResult {
  out: HostTensor;
  lse: HostTensor;
  metadata: MlaMetadata;
}

/** Metadata on the GPU, decode into guarded NaN-filled outputs, results downloaded. */
export function decodeOnGpu(backend: CudaBackend, problem: DeviceProblem, label = '', metadataIn?: MlaMetadata): GpuDecodeResult {
  const [batch, seqlenQ, numHeadsQ] = problem.q.shape;
  const numHeadsKv = problem.kCache.shape[2];
  const metadata = metadataIn ?? getMlaMetadata(problem.cacheSeqlens, (seqlenQ * numHeadsQ) / numHeadsKv, numHeadsKv);
  const out = new GuardedOutput(backend, problem.q.dtype as 'bf16', [batch, seqlenQ, numHeadsQ, HEAD_DIM_V]);
  const lse = new GuardedOutput(backend, 'float32', [batch, numHeadsQ, seqlenQ]);
  try {
    flashMlaWithKvcache(
      problem.q,
      problem.kCache,
      problem.blockTable,
      problem.cacheSeqlens,
      HEAD_DIM_V,
      metadata.tileSchedulerMetadata,
      metadata.numSplits,
      { softmaxScale: problem.softmaxScale, causal: problem.causal, out: out.tensor, lse: lse.tensor },
    );
    const result = { out: out.tensor.toHostSync(), lse: lse.tensor.toHostSync(), metadata };
    out.assertGuardIntact(`${label} out`);
    lse.assertGuardIntact(`${label} lse`);
    return result;
  } finally {
    out.dispose();
    lse.dispose();
  }
}

/** The GPU oracle's outputs: out rounded to the problem's dtype (as the CPU reference does), lse float32. */
export function referenceOnGpu(backend: CudaBackend, problem: DeviceProblem): { out: HostTensor; lse: HostTensor } {
  const shape = shapeOf(problem);
  const out = DeviceTensor.empty(backend.device, 'float32', [shape.batch, shape.seqlenQ, shape.numHeadsQ, HEAD_DIM_V]);
  const lse = DeviceTensor.empty(backend.device, 'float32', [shape.batch, shape.numHeadsQ, shape.seqlenQ]);
  try {
    launchReference(backend.kernels, backend.stream, {
      shape,
      q: problem.q,
      kCache: problem.kCache,
      blockTable: problem.blockTable,
      cacheSeqlens: problem.cacheSeqlens.ptr,
      out: out.ptr,
      lse: lse.ptr,
      maxLength: Math.max(0, ...problem.lengths),
    });
    const out32 = out.toHostSync();
    const encode = shape.dtype === 'bf16' ? float32ToBf16Bits : float32ToFp16Bits;
    const rounded = HostTensor.zeros(shape.dtype, out32.shape);
    const source = out32.data as Float32Array;
    const target = rounded.data as Uint16Array;
    for (let e = 0; e < source.length; e++) target[e] = encode(source[e]);
    return { out: rounded, lse: lse.toHostSync() };
  } finally {
    out.dispose();
    lse.dispose();
  }
}

export function shapeOf(problem: DeviceProblem): DecodeShape {
  return checkDecodeArguments(problem.q, problem.kCache, problem.blockTable, problem.cacheSeqlens, HEAD_DIM_V, {
    softmaxScale: problem.softmaxScale,
    causal: problem.causal,
  });
}

export interface GpuProblemConfig {
  batch: number;
  seqlenQ: number;
  numHeadsQ: number;
  numHeadsKv: number;
  meanLength: number;
  varlen: Varlen;
  causal: boolean;
  dtype: 'bf16' | 'fp16';
  lengths?: Int32Array;
}

/**
 * A problem generated on the GPU (for shapes too large to build on the host): random block
 * placement, NaN everywhere no query attends (the cache is NaN-filled, then each sequence's
 * attended token rows are filled with N(0,1)/10 clamped to ±1), q drawn the same way.
 */
export function generateOnGpu(backend: CudaBackend, config: GpuProblemConfig, random: Random, extraBlocks = 2): DeviceProblem {
  const { batch, seqlenQ, numHeadsQ, numHeadsKv, dtype } = config;
  const lengths = config.lengths ?? drawLengths(random, batch, config.meanLength, config.varlen, seqlenQ);
  const blocksPerSeq = Array.from(lengths, (l) => Math.ceil(l / PAGE_BLOCK_SIZE));
  const numBlocks = blocksPerSeq.reduce((a, b) => a + b, 0) + extraBlocks;
  const maxBlocks = Math.max(1, ...blocksPerSeq);
  const placement = random.permutation(numBlocks);
  const table = HostTensor.full('int32', [batch, maxBlocks], 2147480000);
  let next = 0;
  for (let i = 0; i < batch; i++) for (let j = 0; j < blocksPerSeq[i]; j++) table.set(placement[next++], i, j);

  const kCache = DeviceTensor.empty(backend.device, dtype, [numBlocks, PAGE_BLOCK_SIZE, numHeadsKv, HEAD_DIM_K]);
  const q = DeviceTensor.empty(backend.device, dtype, [batch, seqlenQ, numHeadsQ, HEAD_DIM_K]);
  const stream = backend.stream;
  kCache.fillNaN(stream);
  const rowElements = numHeadsKv * HEAD_DIM_K;
  const elementBytes = bytesPerElement(dtype);
  const seed = () => BigInt(random.nextUint32()) * 4294967296n + BigInt(random.nextUint32());
  // Attended rows of one block are a contiguous run of whole token rows: one fill each.
  for (let i = 0; i < batch; i++) {
    for (let j = 0; j < blocksPerSeq[i]; j++) {
      const tokens = Math.min(PAGE_BLOCK_SIZE, lengths[i] - j * PAGE_BLOCK_SIZE);
      const block = table.get(i, j);
      launchFillNormal(backend.kernels, stream, {
        dst: kCache.ptr + BigInt(block * PAGE_BLOCK_SIZE * rowElements * elementBytes),
        count: tokens * rowElements,
        dtype,
        seed: seed(),
        scale: 0.1,
        clamp: 1,
      });
    }
  }
  launchFillNormal(backend.kernels, stream, { dst: q.ptr, count: q.shape.reduce((a, b) => a * b, 1), dtype, seed: seed(), scale: 0.1, clamp: 1 });
  const blockTable = DeviceTensor.fromHost(backend.device, table, stream);
  const cacheSeqlens = DeviceTensor.fromHost(backend.device, new HostTensor('int32', lengths.slice(), [batch]), stream);
  stream.synchronize();
  const tensors = [q, kCache, blockTable, cacheSeqlens];
  return {
    q,
    kCache,
    blockTable,
    cacheSeqlens,
    softmaxScale: 1 / Math.sqrt(HEAD_DIM_K),
    causal: config.causal,
    lengths,
    dispose: () => {
      for (const t of tensors) t.dispose();
    },
  };
}
