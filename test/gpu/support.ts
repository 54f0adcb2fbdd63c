/**
 * What the GPU tests share: the CUDA backend (or the reason to skip), problems placed on the
 * GPU (uploaded from the host, or generated on the GPU for shapes too large for the CPU), decode
 * with NaN-prefilled outputs followed by guard bytes, and the GPU oracle with the error scales
 * the precision rule judges against it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDecodeArguments } from '../../src/api/validate.js';
import type { DecodeShape } from '../../src/backend/backend.js';
import type { MlaMetadata } from '../../src/backend/metadata.js';
import { HEAD_DIM_K, HEAD_DIM_V, PAGE_BLOCK_SIZE } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { copyDeviceToHostSync, DeviceBuffer, fill, subspan } from '../../src/cuda/memory.js';
import { CudaBackend } from '../../src/cuda-backend/backend.js';
import { GpuUnavailableError } from '../../src/errors.js';
import { bytesPerElement } from '../../src/tensor/dtype.js';
import { float32ToBf16Bits, float32ToFp16Bits, halfDecodeTable } from '../../src/tensor/half.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { numel, storageSpan } from '../../src/tensor/tensor.js';
import {
  boundedErrorScales,
  type KeyMaxima,
  type KeyReader,
  keyMaxima,
} from '../../src/verify/error-scale-bounds.js';
import type { DeviceProblem } from '../../src/verify/gpu-problems.js';
import type { JudgedReference } from '../../src/verify/precision.js';
import type { Problem } from '../../src/verify/problems.js';
import { prepareDecode } from '../../src/verify/run.js';
import { launchReference } from './test-kernels.js';

export { type DeviceProblem, generateOnGpu } from '../../src/verify/gpu-problems.js';

function openGpu(): { backend: CudaBackend; skip: false } | { backend: null; skip: string } {
  try {
    return { backend: CudaBackend.open(0), skip: false };
  } catch (error) {
    if (error instanceof GpuUnavailableError)
      return { backend: null, skip: `no usable GPU: ${error.reason}` };
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

/** Uploads a host problem, keeping its strides (and NaN padding). */
export function uploadProblem(backend: CudaBackend, problem: Problem): DeviceProblem {
  const tensors = [problem.q, problem.kCache, problem.blockTable, problem.cacheSeqlens].map((t) =>
    backend.upload(t),
  );
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
    fill(
      subspan(this.buffer, this.dataBytes, GuardedOutput.GUARD_BYTES),
      8,
      GuardedOutput.GUARD_PATTERN,
      backend.stream,
    );
    this.tensor = DeviceTensor.adopt(this.buffer, dtype, shape);
    this.tensor.fillNaN(backend.stream);
  }

  assertGuardIntact(label: string): void {
    const guard = new Uint8Array(GuardedOutput.GUARD_BYTES);
    copyDeviceToHostSync(guard, subspan(this.buffer, this.dataBytes, GuardedOutput.GUARD_BYTES));
    assert.ok(
      guard.every((b) => b === GuardedOutput.GUARD_PATTERN),
      `${label}: guard bytes after the output were overwritten`,
    );
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
export function decodeOnGpu(
  backend: CudaBackend,
  problem: DeviceProblem,
  label = '',
  metadataIn?: MlaMetadata,
): GpuDecodeResult {
  const [batch, seqlenQ, numHeadsQ] = problem.q.shape;
  const out = new GuardedOutput(backend, problem.q.dtype as 'bf16', [
    batch,
    seqlenQ,
    numHeadsQ,
    HEAD_DIM_V,
  ]);
  const lse = new GuardedOutput(backend, 'float32', [batch, numHeadsQ, seqlenQ]);
  try {
    const { metadata, decode } = prepareDecode(
      problem,
      { out: out.tensor, lse: lse.tensor },
      metadataIn,
    );
    decode();
    const result = { out: out.tensor.toHostSync(), lse: lse.tensor.toHostSync(), metadata };
    out.assertGuardIntact(`${label} out`);
    lse.assertGuardIntact(`${label} lse`);
    return result;
  } finally {
    out.dispose();
    lse.dispose();
  }
}

/**
 * The GPU oracle's outputs (out rounded to the problem's dtype, as the CPU reference does; lse
 * float32) and, since it gives no softmax weights, error scales bounded from the data
 * (src/verify/error-scale-bounds.ts). Calls that share a cache and lengths may share `maxima`.
 */
export function referenceOnGpu(
  backend: CudaBackend,
  problem: DeviceProblem,
  maxima: KeyMaxima = keyMaximaOnGpu(problem),
): JudgedReference {
  const shape = shapeOf(problem);
  const out = DeviceTensor.empty(backend.device, 'float32', [
    shape.batch,
    shape.seqlenQ,
    shape.numHeadsQ,
    HEAD_DIM_V,
  ]);
  const lse = DeviceTensor.empty(backend.device, 'float32', [
    shape.batch,
    shape.numHeadsQ,
    shape.seqlenQ,
  ]);
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
    return {
      out: rounded,
      lse: lse.toHostSync(),
      errorScales: boundedErrorScales(problem.q.toHostSync(), problem.lengths, maxima, problem),
    };
  } finally {
    out.dispose();
    lse.dispose();
  }
}

/** The largest |V_c| and key norm of each sequence and KV head, read from the GPU block by block. */
export function keyMaximaOnGpu(problem: DeviceProblem): KeyMaxima {
  return keyMaxima(problem.lengths, problem.kCache.shape[2], new DeviceKeyReader(problem));
}

/**
 * Cache rows read from the GPU, one whole block ([64, h_kv, 576]) copied at a time and kept
 * while its rows are read. A block id outside the pool reads as zeros, as the GPU oracle reads it.
 */
class DeviceKeyReader implements KeyReader {
  private readonly kCache: DeviceTensor;
  private readonly table: HostTensor;
  private readonly values: Float32Array;
  private readonly bits: Uint16Array;
  private loaded = -1;

  constructor(problem: DeviceProblem) {
    this.kCache = problem.kCache;
    this.table = problem.blockTable.toHostSync();
    this.values = halfDecodeTable(this.kCache.dtype === 'fp16' ? 'fp16' : 'bf16');
    const [, tokens, heads, width] = this.kCache.shape;
    this.bits = new Uint16Array(storageSpan([tokens, heads, width], this.kCache.strides.slice(1)));
  }

  readKeys(batch: number, kvHead: number, begin: number, end: number, into: Float64Array): void {
    const block = this.table.get(batch, Math.floor(begin / PAGE_BLOCK_SIZE));
    if (block < 0 || block >= this.kCache.shape[0]) {
      into.fill(0, 0, (end - begin) * HEAD_DIM_K);
      return;
    }
    const [blockStride, tokenStride, headStride, channelStride] = this.kCache.strides;
    if (block !== this.loaded) {
      copyDeviceToHostSync(
        this.bits,
        subspan(this.kCache.storage(), block * blockStride * 2, this.bits.byteLength),
      );
      this.loaded = block;
    }
    for (let t = begin; t < end; t++) {
      const base = (t % PAGE_BLOCK_SIZE) * tokenStride + kvHead * headStride;
      const row = (t - begin) * HEAD_DIM_K;
      for (let c = 0; c < HEAD_DIM_K; c++)
        into[row + c] = this.values[this.bits[base + c * channelStride]];
    }
  }
}

export function shapeOf(problem: DeviceProblem): DecodeShape {
  return checkDecodeArguments(
    problem.q,
    problem.kCache,
    problem.blockTable,
    problem.cacheSeqlens,
    HEAD_DIM_V,
    {
      softmaxScale: problem.softmaxScale,
      causal: problem.causal,
    },
  );
}
