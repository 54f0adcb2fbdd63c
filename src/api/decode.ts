/**
 * The public entry points, FlashMLA's API in TypeScript's idiom: getMlaMetadata once per decode
 * step, then flashMlaWithKvcache once per layer. Each goes one way: validate the arguments
 * (validate.ts), find the backend where the tensors live (all on the host: the CPU; all on one
 * GPU: CUDA), check the shapes against that backend's limits, and hand it the checked call.
 */
import type { DecodeResult } from '../backend/backend.js';
import { checkDecodeLimits, checkMetadataLimits } from '../backend/limits.js';
import { MlaMetadata } from '../backend/metadata.js';
import type { DeviceTensor } from '../cuda/device-tensor.js';
import { OptionError } from '../errors.js';
import { describeValue } from '../options.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { backendForDevice } from './open-backend.js';
import {
  checkDecodeCall,
  checkMetadataCall,
  type DecodeOptions,
  type MetadataOptions,
} from './validate.js';

export type { DecodeOptions, MetadataOptions };

/**
 * Computes the tile schedule for one decode step from the cache lengths, where they live (on a
 * GPU, by a kernel: no host round trip). `numQRowsPerKvHead` is s_q * h_q / h_kv.
 */
export function getMlaMetadata(
  cacheSeqlens: Tensor,
  numQRowsPerKvHead: number,
  numHeadsK: number,
  options?: MetadataOptions,
): MlaMetadata {
  const call = checkMetadataCall(cacheSeqlens, numQRowsPerKvHead, numHeadsK, options);
  const backend = backendForDevice(call.cacheSeqlens.device);
  checkMetadataLimits(call, backend.limits);
  return backend.getMlaMetadata(call);
}

/**
 * MLA decode attention over a paged KV cache, with the metadata getMlaMetadata returned (the
 * object, or FlashMLA's two tensors tileSchedulerMetadata and numSplits). On the GPU it enqueues
 * and returns at once; read results with `await out.toHost()` (or `toHostSync()`). On the host
 * it computes before returning.
 */
export function flashMlaWithKvcache(
  q: HostTensor,
  kCache: HostTensor,
  blockTable: HostTensor,
  cacheSeqlens: HostTensor,
  headDimV: number,
  metadata: MlaMetadata,
  options?: DecodeOptions,
): DecodeResult<HostTensor>;
export function flashMlaWithKvcache(
  q: DeviceTensor,
  kCache: DeviceTensor,
  blockTable: DeviceTensor,
  cacheSeqlens: DeviceTensor,
  headDimV: number,
  metadata: MlaMetadata,
  options?: DecodeOptions,
): DecodeResult<DeviceTensor>;
export function flashMlaWithKvcache(
  q: Tensor,
  kCache: Tensor,
  blockTable: Tensor,
  cacheSeqlens: Tensor,
  headDimV: number,
  metadata: MlaMetadata,
  options?: DecodeOptions,
): DecodeResult;
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
  metadataOrTileSchedulerMetadata: MlaMetadata | Tensor,
  numSplitsOrOptions?: Tensor | DecodeOptions,
  options?: DecodeOptions,
): DecodeResult {
  let schedule: MlaMetadata | { tileSchedulerMetadata: Tensor; numSplits: Tensor };
  if (metadataOrTileSchedulerMetadata instanceof MlaMetadata) {
    if (options !== undefined) {
      throw new OptionError(
        'options',
        'the options right after the MlaMetadata (it stands for both of its tensors)',
        `an eighth argument, ${describeValue(options)}`,
      );
    }
    schedule = metadataOrTileSchedulerMetadata;
    options = numSplitsOrOptions as DecodeOptions | undefined;
  } else {
    schedule = {
      tileSchedulerMetadata: metadataOrTileSchedulerMetadata,
      numSplits: numSplitsOrOptions as Tensor,
    };
  }
  const call = checkDecodeCall(q, kCache, blockTable, cacheSeqlens, headDimV, schedule, options);
  const backend = backendForDevice(call.shape.device);
  checkDecodeLimits(call.shape, backend.limits);
  return backend.decode(call);
}
