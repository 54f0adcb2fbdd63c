/**
 * What a backend does. The public API validates the arguments, finds the backend where the
 * tensors live, and hands it a checked call.
 */

import type { DecodeShape } from '../api/validate.js';
import type { CudaStream } from '../cuda/stream.js';
import type { DType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import type { MlaMetadata } from './metadata.js';

export type BackendKind = 'cpu' | 'cuda';

export interface DecodeCall {
  q: Tensor;
  kCache: Tensor;
  blockTable: Tensor;
  cacheSeqlens: Tensor;
  shape: DecodeShape;
  metadata: MlaMetadata;
  out?: Tensor;
  lse?: Tensor;
  /** Copy blockTable and cacheSeqlens to the host and check their values (always done on the CPU). */
  validateValues: boolean;
  /** The stream to enqueue on (CUDA); default: the device's default stream. */
  stream?: CudaStream;
}

export interface DecodeResult<T extends Tensor = Tensor> {
  /** [b, s_q, h_q, 512] in q's dtype. */
  out: T;
  /** [b, h_q, s_q] float32, natural log; +Infinity on rows with nothing to attend. */
  lse: T;
}

export interface Backend {
  readonly kind: BackendKind;
  /** One line: what runs the work ("cpu (float64 split-KV)", "cuda:0 NVIDIA H100 ..."). */
  readonly description: string;
  /** Parts the tile scheduler cuts work into for this head layout on this backend. */
  numSmParts(numQRowsPerKvHead: number, numHeadsK: number): number;
  /** A new schedule, or (with `into`) the schedule recomputed into existing metadata's buffers. */
  getMlaMetadata(
    cacheSeqlens: Tensor,
    numQRowsPerKvHead: number,
    numHeadsK: number,
    stream?: CudaStream,
    into?: MlaMetadata,
  ): MlaMetadata;
  decode(call: DecodeCall): DecodeResult;
  /** A new tensor of zeros (host) or uninitialised memory (device). */
  empty(dtype: DType, shape: readonly number[]): Tensor;
  /** Copies a host tensor here (host: itself). */
  upload(tensor: HostTensor): Tensor;
  /**
   * Views memory another library allocated on this backend's GPU, without a copy (DLPack-style:
   * address of element [0, ...], dtype, shape, element strides). The CPU backend has no device
   * memory and throws.
   */
  wrap(ptr: bigint, dtype: DType, shape: readonly number[], strides?: readonly number[]): Tensor;
  /** Waits for all queued work. */
  synchronize(): void;
  /**
   * Times `work` (which enqueues on this backend): `warmup` untimed runs, then one time in
   * milliseconds per repeat (CUDA events around each run on the GPU, the wall clock on the CPU).
   */
  time(work: () => void, options: { warmup: number; repeats: number }): number[];
}
