/**
 * Launchers of the kernels only the tests use: the plain float32 GPU oracle and the TMA probe.
 * They build their parameter blocks the way src/cuda-backend/launch.ts does.
 */
import type { DecodeShape } from '../../src/backend/backend.js';
import { HEAD_DIM_V } from '../../src/config.js';
import type { DevicePointer } from '../../src/cuda/driver.js';
import type { CudaStream } from '../../src/cuda/stream.js';
import type { KernelSet } from '../../src/cuda-backend/binaries.js';
import { attentionShape, type KernelTensor, withAttention } from '../../src/cuda-backend/launch.js';
import {
  ParamBlock,
  ReferenceParamsLayout,
  TmaProbeParamsLayout,
} from '../../src/cuda-backend/layout.js';

export interface ReferenceLaunch {
  shape: DecodeShape;
  q: KernelTensor;
  kCache: KernelTensor;
  blockTable: KernelTensor;
  cacheSeqlens: DevicePointer;
  /** float32 [b, s_q, h_q, 512] and [b, h_q, s_q], contiguous. */
  out: DevicePointer;
  lse: DevicePointer;
  /** The longest cache length in the batch (sizes the kernel's score buffer). */
  maxLength: number;
}

/** The plain float32 GPU oracle: one CTA per (sequence, query token, head). */
export function launchReference(
  kernels: KernelSet,
  stream: CudaStream,
  launch: ReferenceLaunch,
): void {
  const { shape } = launch;
  const name = `flashmla_reference_${shape.dtype}`;
  const info = kernels.kernelInfo(name);
  const outStrides = [
    shape.seqlenQ * shape.numHeadsQ * HEAD_DIM_V,
    shape.numHeadsQ * HEAD_DIM_V,
    HEAD_DIM_V,
    1,
  ];
  const maxKeys = Math.min(launch.maxLength, (info.maxDynamicSmemBytes ?? 0) / 4);
  kernels.get(name).launch({
    grid: [shape.batch * shape.seqlenQ * shape.numHeadsQ, 1, 1],
    block: [info.threads, 1, 1],
    sharedBytes: 4 * Math.max(maxKeys, 1),
    stream,
    params: withAttention(
      new ParamBlock(ReferenceParamsLayout),
      attentionShape(shape, launch.q, launch.kCache, launch.blockTable, {
        ptr: launch.out,
        strides: outStrides,
      }),
    )
      .set('q', launch.q.ptr)
      .set('k_cache', launch.kCache.ptr)
      .set('block_table', launch.blockTable.ptr)
      .set('cache_seqlens', launch.cacheSeqlens)
      .set('out', launch.out)
      .set('lse', launch.lse).bytes,
  });
}

/** Fetches one 64x64 bf16 box at (x, y) through a TMA descriptor into dst (8 KiB, as shared memory held it). */
export function launchTmaProbe(
  kernels: KernelSet,
  stream: CudaStream,
  launch: { tensorMap: Uint8Array; x: number; y: number; dst: DevicePointer },
): void {
  kernels.get('flashmla_tma_probe').launch({
    grid: [1, 1, 1],
    block: [kernels.kernelInfo('flashmla_tma_probe').threads, 1, 1],
    stream,
    params: new ParamBlock(TmaProbeParamsLayout)
      .set('tensor_map', launch.tensorMap)
      .set('x', launch.x)
      .set('y', launch.y)
      .set('dst', launch.dst).bytes,
  });
}
