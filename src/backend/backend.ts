/**
 * The contract every backend meets. The public API validates a call once (api/validate.ts),
 * checks it against the limits of the backend where its tensors live (limits.ts), and hands that
 * backend the checked call; a backend trusts the call and does not look at the arguments again.
 */
import type { CudaStream } from '../cuda/stream.js';
import { ShapeError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import type { HostData, HostTensor } from '../tensor/host-tensor.js';
import { formatShape, type Tensor, type TensorDevice } from '../tensor/tensor.js';
import type { BackendLimits } from './limits.js';
import type { MetadataTensors, MlaMetadata } from './metadata.js';

export type BackendKind = 'cpu' | 'cuda';

/** The dimensions of one validated decode call. */
export interface DecodeShape {
  dtype: 'bf16' | 'fp16';
  device: TensorDevice;
  batch: number;
  seqlenQ: number;
  numHeadsQ: number;
  numHeadsKv: number;
  groupSize: number;
  rowsPerKvHead: number;
  numBlocks: number;
  maxBlocksPerSeq: number;
  softmaxScale: number;
  causal: boolean;
}

/** A checked getMlaMetadata call. */
export interface MetadataCall {
  cacheSeqlens: Tensor;
  batch: number;
  numQRowsPerKvHead: number;
  numHeadsK: number;
  /** Recompute the schedule into this metadata's buffers instead of allocating new ones. */
  into?: MlaMetadata;
  stream?: CudaStream;
}

/**
 * A checked flashMlaWithKvcache call. The values of the lengths and of the used block-table
 * entries are checked too for host tensors, and for device tensors when the caller asked.
 */
export interface DecodeCall {
  q: Tensor;
  kCache: Tensor;
  blockTable: Tensor;
  cacheSeqlens: Tensor;
  shape: DecodeShape;
  /** The metadata getMlaMetadata returned, or its two tensors; the backend finds its own record. */
  schedule: MlaMetadata | MetadataTensors;
  out?: Tensor;
  lse?: Tensor;
  stream?: CudaStream;
}

export interface DecodeResult<T extends Tensor = Tensor> {
  /** [b, s_q, h_q, 512] in q's dtype. */
  out: T;
  /** [b, h_q, s_q] float32, natural log; +Infinity on rows with nothing to attend. */
  lse: T;
}

/**
 * Work recorded once and run again by replay(): on the GPU a CUDA graph (one launch for a whole
 * decode step), on the CPU the recorded function itself.
 */
export interface CapturedGraph {
  /** Enqueues the recorded work again (on the stream it was captured on). */
  replay(): void;
  dispose(): void;
  [Symbol.dispose](): void;
}

export interface Backend {
  readonly kind: BackendKind;
  /** One line: what runs the work ("cpu (float64 split-KV)", "cuda:0 NVIDIA H100 ..."). */
  readonly description: string;
  /** The largest shapes it runs; the CPU backend keeps the GPU's, so both refuse the same ones. */
  readonly limits: BackendLimits;
  /** Parts the tile scheduler cuts work into for this head layout on this backend. */
  numSmParts(numQRowsPerKvHead: number, numHeadsK: number): number;
  /** A new schedule, or (with `into`) the schedule recomputed into existing metadata's buffers. */
  getMlaMetadata(call: MetadataCall): MlaMetadata;
  decode(call: DecodeCall): DecodeResult;
  /** A new tensor of zeros (host) or uninitialised memory (device). */
  empty(dtype: DType, shape: readonly number[]): Tensor;
  /** Copies a host tensor here (host: itself). */
  upload(tensor: HostTensor): Tensor;
  /**
   * Writes the values of `source` into `target`, a contiguous tensor of this backend with the
   * same dtype and shape, in place (on the GPU, enqueued on `stream`, default the backend's):
   * how new lengths or block-table rows reach a captured decode step before its replay.
   */
  write(target: Tensor, source: HostTensor, stream?: CudaStream): void;
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
  /**
   * Records what `record` enqueues on this backend, to be replayed later. On the GPU nothing
   * runs while recording: the calls are captured into a CUDA graph on `options.stream` (default:
   * the backend's stream), calls that name no stream enqueue there, and nothing may be allocated
   * (pass `out`/`lse` and recompute metadata with `into`). On the CPU the function is kept and
   * replay() calls it.
   */
  captureGraph(record: () => void, options?: { stream?: CudaStream }): CapturedGraph;
}

/**
 * What Backend.write copies: the elements of `source` in row-major order, once it is checked to
 * have `target`'s dtype and shape (the backends check the tensors themselves first).
 */
export function writeSourceElements(target: Tensor, source: HostTensor): HostData {
  if (target.dtype !== source.dtype || formatShape(target.shape) !== formatShape(source.shape)) {
    throw new ShapeError(
      'source',
      `${target.dtype} ${formatShape(target.shape)} (the target's dtype and shape)`,
      `${source.dtype} ${formatShape(source.shape)}`,
    );
  }
  const values = source.contiguous();
  return values.data.subarray(values.offset, values.offset + values.numel);
}
