/**
 * The public entry points, FlashMLA's API in TypeScript's idiom: getMlaMetadata once per decode
 * step, then flashMlaWithKvcache once per layer. Each validates its arguments, finds the backend
 * where the tensors live (all on the host: the CPU; all on one GPU: CUDA; anything else is an
 * error) and hands it the checked call.
 */
import type { DecodeResult } from '../backend/backend.js';
import { MlaMetadata, metadataFor } from '../backend/metadata.js';
import { MAX_SCHEDULER_BATCH } from '../config.js';
import type { DeviceTensor } from '../cuda/device-tensor.js';
import type { CudaStream } from '../cuda/stream.js';
import { LimitError, OptionError } from '../errors.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendForDevice } from './open-backend.js';
import {
  checkCacheSeqlens,
  checkDecodeArguments,
  checkOutputs,
  checkPositiveInteger,
  checkSameDevice,
  checkTensor,
  describeValue,
} from './validate.js';

export interface DecodeOptions {
  /** Scale of q·k before the softmax; default 1/sqrt(576). */
  softmaxScale?: number;
  /** Bottom-right aligned causal mask over the s_q query tokens; default false (FlashMLA's). */
  causal?: boolean;
  /** Preallocated output [b, s_q, h_q, 512] in q's dtype, where it lives (for graph capture). */
  out?: Tensor;
  /** Preallocated lse [b, h_q, s_q] float32, contiguous. */
  lse?: Tensor;
  /**
   * Also check the values of blockTable and cacheSeqlens on device tensors (lengths within the
   * table's capacity, used block ids inside the cache). It copies them to the host and waits.
   * Host tensors are always checked.
   */
  validateValues?: boolean;
  /** CUDA stream to enqueue on; default: the device's default stream. Ignored on the host. */
  stream?: CudaStream;
}

export interface MetadataOptions {
  /** CUDA stream to enqueue the scheduler kernel on; default: the device's default stream. */
  stream?: CudaStream;
  /**
   * Recompute into this metadata's buffers instead of allocating new ones (same batch size and
   * head layout): what a CUDA-graph capture of a whole decode step needs, since nothing may be
   * allocated while capturing.
   */
  into?: MlaMetadata;
}

/**
 * Computes the tile schedule for one decode step from the cache lengths, where they live (on a
 * GPU, by a kernel: no host round trip). `numQRowsPerKvHead` is s_q * h_q / h_kv.
 */
export function getMlaMetadata(
  cacheSeqlens: Tensor,
  numQRowsPerKvHead: number,
  numHeadsK: number,
  options: MetadataOptions = {},
): MlaMetadata {
  checkTensor('cacheSeqlens', cacheSeqlens);
  const batch = checkCacheSeqlens(cacheSeqlens);
  checkPositiveInteger('numQRowsPerKvHead', numQRowsPerKvHead);
  checkPositiveInteger('numHeadsK', numHeadsK);
  const backend = backendForDevice(cacheSeqlens.device);
  if (backend.kind === 'cuda' && batch > MAX_SCHEDULER_BATCH) {
    throw new LimitError(
      'cacheSeqlens',
      `at most ${MAX_SCHEDULER_BATCH} sequences (the scheduler's shared memory)`,
      `${batch}`,
    );
  }
  if (options.into !== undefined) {
    if (!(options.into instanceof MlaMetadata))
      throw new OptionError(
        'into',
        'an MlaMetadata from getMlaMetadata',
        describeValue(options.into),
      );
    checkSameDevice({ cacheSeqlens, into: options.into.tileSchedulerMetadata });
    metadataFor(options.into.tileSchedulerMetadata, options.into.numSplits, {
      batch,
      numQRowsPerKvHead,
      numHeadsK,
    });
  }
  return backend.getMlaMetadata(
    cacheSeqlens,
    numQRowsPerKvHead,
    numHeadsK,
    options.stream,
    options.into,
  );
}

/**
 * MLA decode attention over a paged KV cache. On the GPU it enqueues and returns at once; read
 * results with `await out.toHost()` (or `toHostSync()`). On the host it computes before returning.
 */
export function flashMlaWithKvcache(
  q: HostTensor,
  kCache: HostTensor,
  blockTable: HostTensor,
  cacheSeqlens: HostTensor,
  headDimV: number,
  tileSchedulerMetadata: Tensor,
  numSplits: Tensor,
  options?: DecodeOptions,
): DecodeResult<HostTensor>;
export function flashMlaWithKvcache(
  q: DeviceTensor,
  kCache: DeviceTensor,
  blockTable: DeviceTensor,
  cacheSeqlens: DeviceTensor,
  headDimV: number,
  tileSchedulerMetadata: Tensor,
  numSplits: Tensor,
  options?: DecodeOptions,
): DecodeResult<DeviceTensor>;
export function flashMlaWithKvcache(
  q: Tensor,
  kCache: Tensor,
  blockTable: Tensor,
  cacheSeqlens: Tensor,
  headDimV: number,
  tileSchedulerMetadata: Tensor,
  numSplits: Tensor,
  options?: DecodeOptions,
): DecodeResult;
export function flashMlaWithKvcache(
  q: Tensor,
  kCache: Tensor,
  blockTable: Tensor,
  cacheSeqlens: Tensor,
  headDimV: number,
  tileSchedulerMetadata: Tensor,
  numSplits: Tensor,
  options: DecodeOptions = {},
): DecodeResult {
  const shape = checkDecodeArguments(q, kCache, blockTable, cacheSeqlens, headDimV, options);
  checkTensor('tileSchedulerMetadata', tileSchedulerMetadata);
  checkTensor('numSplits', numSplits);
  checkSameDevice({ q, tileSchedulerMetadata, numSplits });
  const metadata = metadataFor(tileSchedulerMetadata, numSplits, {
    batch: shape.batch,
    numQRowsPerKvHead: shape.rowsPerKvHead,
    numHeadsK: shape.numHeadsKv,
  });
  checkOutputs(options.out, options.lse, shape);
  return backendForDevice(shape.device).decode({
    q,
    kCache,
    blockTable,
    cacheSeqlens,
    shape,
    metadata,
    out: options.out,
    lse: options.lse,
    validateValues: options.validateValues ?? false,
    stream: options.stream,
  });
}
