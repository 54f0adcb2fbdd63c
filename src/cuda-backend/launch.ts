/**
 * One launcher per kernel: each writes its parameter block (layout.ts), sizes the grid the way
 * the kernel's header comment says, and enqueues it on a stream. Nothing here waits.
 */

import type { DecodeShape } from '../backend/backend.js';
import type { BackendLimits } from '../backend/limits.js';
import { HEAD_DIM_K, PAGE_BLOCK_SIZE, ROW_TILE } from '../config.js';
import type { CudaDevice } from '../cuda/device.js';
import type { DevicePointer } from '../cuda/driver.js';
import { LAUNCH_LIMITS } from '../cuda/module.js';
import type { CudaStream } from '../cuda/stream.js';
import { encodeTensorMapTiled } from '../cuda/tensor-map.js';
import { OptionError } from '../errors.js';
import type { KernelLayoutFile, KernelSet } from './binaries.js';
import {
  AttentionShapeLayout,
  CombineParamsLayout,
  CopyParamsLayout,
  DecodeParamsLayout,
  FillParamsLayout,
  MetadataParamsLayout,
  ParamBlock,
  type StructLayout,
} from './layout.js';

/** A device tensor as the kernels see it: the address of element [0,...] and element strides. */
export interface KernelTensor {
  ptr: DevicePointer;
  strides: readonly number[];
}

/*
 * Parameter blocks reused from launch to launch, one per struct of the hot path: the driver
 * copies a block when the launch is enqueued, so it may be rewritten at once, and a decode call
 * allocates none. Every field but the reserved ones is written at each launch.
 */
const attentionParams = new ParamBlock(AttentionShapeLayout);
const metadataParams = new ParamBlock(MetadataParamsLayout);
const decodeParams = new ParamBlock(DecodeParamsLayout);
const combineParams = new ParamBlock(CombineParamsLayout);

/** Each decode-path kernel's name by element type (the decode kernels: DECODE_VARIANTS). */
const COMBINE_KERNEL = { bf16: 'flashmla_combine_bf16', fp16: 'flashmla_combine_fp16' } as const;
const FILL_KERNEL = {
  bf16: 'flashmla_fill_normal_bf16',
  fp16: 'flashmla_fill_normal_fp16',
} as const;

/**
 * The AttentionShape part shared by the decode, combine and reference parameter blocks, as its
 * bytes (valid until the next call: the block is reused). Written once per call and copied into
 * each block.
 */
export function attentionShape(
  shape: DecodeShape,
  q: KernelTensor,
  kCache: KernelTensor,
  blockTable: KernelTensor,
  out: KernelTensor,
): Uint8Array {
  return attentionParams
    .set('batch', shape.batch)
    .set('seqlen_q', shape.seqlenQ)
    .set('num_heads_q', shape.numHeadsQ)
    .set('num_heads_kv', shape.numHeadsKv)
    .set('group_size', shape.groupSize)
    .set('rows_per_kv_head', shape.rowsPerKvHead)
    .set('num_cache_blocks', shape.numBlocks)
    .set('max_blocks_per_seq', shape.maxBlocksPerSeq)
    .set('causal', shape.causal ? 1 : 0)
    .set('softmax_scale', shape.softmaxScale)
    .set('softmax_scale_log2', shape.softmaxScale * Math.LOG2E)
    .set('q_batch_stride', q.strides[0])
    .set('q_row_stride', q.strides[1])
    .set('q_head_stride', q.strides[2])
    .set('k_block_stride', kCache.strides[0])
    .set('k_token_stride', kCache.strides[1])
    .set('k_head_stride', kCache.strides[2])
    .set('block_table_batch_stride', blockTable.strides[0])
    .set('out_batch_stride', out.strides[0])
    .set('out_row_stride', out.strides[1])
    .set('out_head_stride', out.strides[2]).bytes;
}

/** Copies `attention` into the nested `shape` struct of `block`. */
export function withAttention<Name extends string>(
  block: ParamBlock<Name>,
  attention: Uint8Array,
): ParamBlock<Name> {
  block.bytes.set(attention, block.layout.fields['shape.batch' as Name].offset);
  return block;
}

function block<Name extends string>(
  layout: StructLayout<Name>,
  values: Record<string, number | bigint | Uint8Array>,
): Uint8Array {
  return new ParamBlock(layout).setAll(values as Partial<Record<Name, number | bigint>>).bytes;
}

export interface MetadataLaunch {
  cacheSeqlens: DevicePointer;
  tileSchedulerMetadata: DevicePointer;
  numSplits: DevicePointer;
  batch: number;
  numSmParts: number;
  /** Lengths above this (the block table's capacity) are clamped; INT32_MAX when unknown. */
  maxSeqlen: number;
  /** The cost of starting a piece, in KV blocks (scheduler.ts fixedOverheadBlocksFor). */
  fixedOverheadBlocks: number;
}

export function launchMetadata(
  kernels: KernelSet,
  stream: CudaStream,
  launch: MetadataLaunch,
): void {
  const name = 'flashmla_get_metadata';
  const info = kernels.kernelInfo(name);
  kernels.get(name).launch({
    grid: [1, 1, 1],
    block: [info.threads, 1, 1],
    sharedBytes: 4 * launch.batch,
    stream,
    params: metadataParams
      .set('cache_seqlens', launch.cacheSeqlens)
      .set('tile_scheduler_metadata', launch.tileSchedulerMetadata)
      .set('num_splits', launch.numSplits)
      .set('batch', launch.batch)
      .set('num_sm_parts', launch.numSmParts)
      .set('max_seqlen', launch.maxSeqlen)
      .set('fixed_overhead_blocks', launch.fixedOverheadBlocks).bytes,
  });
}

/**
 * The decode kernels. Every variant takes DecodeParams and the same grid, (ceil(s_q·h_q/h_kv /
 * 64), h_kv, numSmParts): one CTA per 64-row tile, KV head and part of the schedule, walking the
 * part's pieces; its threads and shared memory come from the layout file the build emits.
 *   seesaw: K by TMA (4-D tensor map), both products on wgmma, two math warpgroups overlapping
 *           softmax with the tensor cores (csrc/decode_seesaw_sm90.cu).
 * (The first kernel, cp.async and mma.sync, is in the history; the seesaw kernel passes
 * everything it did, faster on every row.) A new variant is an entry here and a cubin.
 */
export const DECODE_VARIANTS = {
  seesaw: {
    kernels: { bf16: 'flashmla_decode_seesaw_bf16', fp16: 'flashmla_decode_seesaw_fp16' },
    needsKTensorMap: true,
  },
} as const satisfies Record<
  string,
  { kernels: Record<'bf16' | 'fp16', string>; needsKTensorMap: boolean }
>;

export type DecodeVariant = keyof typeof DECODE_VARIANTS;

/** FLASHMLA_DECODE_KERNEL picks a variant (for tests and measurements); default 'seesaw'. */
export function decodeVariantFromEnvironment(): DecodeVariant {
  const value = process.env.FLASHMLA_DECODE_KERNEL;
  if (value === undefined || value === '') return 'seesaw';
  if (!Object.hasOwn(DECODE_VARIANTS, value)) {
    throw new OptionError(
      'FLASHMLA_DECODE_KERNEL',
      `one of ${Object.keys(DECODE_VARIANTS).join(', ')}`,
      value,
    );
  }
  return value as DecodeVariant;
}

/**
 * The TMA descriptor of kCache as the 4-D tensor (576 channels, h_kv, 64 tokens, blocks), box
 * (64, 1, 64, 1) with 128-byte swizzle: one 64 x 64 sub-tile of one block. Encoding costs host
 * time, and a cache tensor lives for many calls, so each is encoded once.
 */
const kTensorMaps = new WeakMap<KernelTensor, Uint8Array>();

function kTensorMap(device: CudaDevice, kCache: KernelTensor, shape: DecodeShape): Uint8Array {
  const cached = kTensorMaps.get(kCache);
  if (cached) return cached;
  const map = encodeTensorMapTiled(device, {
    dtype: shape.dtype,
    globalAddress: kCache.ptr,
    // An empty pool still needs a dimension of 1: the kernels treat every block id as out of
    // range there and ask for boxes past the end, which TMA fills with zeros without reading.
    globalDims: [HEAD_DIM_K, shape.numHeadsKv, PAGE_BLOCK_SIZE, Math.max(shape.numBlocks, 1)],
    globalStridesBytes: [kCache.strides[2] * 2, kCache.strides[1] * 2, kCache.strides[0] * 2],
    boxDims: [64, 1, PAGE_BLOCK_SIZE, 1],
    swizzle: '128B',
    // 128-byte L2 promotion, the size of one box row: 256 bytes also fetched the neighbouring
    // sub-tile's bytes early and made the memory-bound rows 3-4% slower (H200,
    // bench/results/dev-h200-2026-11-28-fifth-session.txt, run 2).
    l2Promotion: '128B',
  });
  kTensorMaps.set(kCache, map);
  return map;
}

export interface DecodeLaunch {
  variant: DecodeVariant;
  shape: DecodeShape;
  q: KernelTensor;
  kCache: KernelTensor;
  blockTable: KernelTensor;
  cacheSeqlens: DevicePointer;
  tileSchedulerMetadata: DevicePointer;
  numSplits: DevicePointer;
  numSmParts: number;
  out: KernelTensor;
  lse: DevicePointer;
  oAccum: DevicePointer;
  lseAccum: DevicePointer;
  /** Where the kernel reports bad values (a DeviceErrorReport), or 0n for nowhere. */
  errors: DevicePointer;
}

/** A split-KV decode kernel, then the combine kernel (programmatic dependent launch). */
export function launchDecode(kernels: KernelSet, stream: CudaStream, launch: DecodeLaunch): void {
  const { shape } = launch;
  const variant = DECODE_VARIANTS[launch.variant];
  const decodeName = variant.kernels[shape.dtype];
  const decodeInfo = kernels.kernelInfo(decodeName);
  const attention = attentionShape(shape, launch.q, launch.kCache, launch.blockTable, launch.out);
  const params = withAttention(decodeParams, attention);
  if (variant.needsKTensorMap) {
    params.set('k_tensor_map', kTensorMap(kernels.device, launch.kCache, shape));
  }
  kernels.get(decodeName).launch({
    grid: [Math.ceil(shape.rowsPerKvHead / ROW_TILE), shape.numHeadsKv, launch.numSmParts],
    block: [decodeInfo.threads, 1, 1],
    sharedBytes: decodeInfo.dynamicSmemBytes ?? 0,
    stream,
    params: params
      .set('q', launch.q.ptr)
      .set('k_cache', launch.kCache.ptr)
      .set('block_table', launch.blockTable.ptr)
      .set('cache_seqlens', launch.cacheSeqlens)
      .set('tile_scheduler_metadata', launch.tileSchedulerMetadata)
      .set('num_splits', launch.numSplits)
      .set('out', launch.out.ptr)
      .set('lse', launch.lse)
      .set('o_accum', launch.oAccum)
      .set('lse_accum', launch.lseAccum)
      .set('errors', launch.errors)
      .set('num_sm_parts', launch.numSmParts).bytes,
  });
  launchCombine(kernels, stream, {
    shape,
    attention,
    numSplits: launch.numSplits,
    oAccum: launch.oAccum,
    lseAccum: launch.lseAccum,
    out: launch.out.ptr,
    lse: launch.lse,
  });
}

export interface CombineLaunch {
  shape: DecodeShape;
  /** The AttentionShape bytes, as the decode launch wrote them. */
  attention: Uint8Array;
  numSplits: DevicePointer;
  oAccum: DevicePointer;
  lseAccum: DevicePointer;
  out: DevicePointer;
  lse: DevicePointer;
  /** 1 (whole rows) or the kernel's channelSlices; by default chosen from the grid's size. */
  channelSlices?: number;
}

export function launchCombine(kernels: KernelSet, stream: CudaStream, launch: CombineLaunch): void {
  const name = COMBINE_KERNEL[launch.shape.dtype];
  const info = kernels.kernelInfo(name);
  const rowsPerBlock = info.rowsPerBlock ?? 1;
  const { batch, numHeadsKv, rowsPerKvHead } = launch.shape;
  const rowBlocks = Math.ceil(rowsPerKvHead / rowsPerBlock);
  // Whole rows per warp, unless that leaves SMs idle: then each row's channels are sliced over
  // several CTAs (csrc/combine.cu), which small batches finish in a fraction of the time.
  const slices =
    launch.channelSlices ??
    (batch * numHeadsKv * rowBlocks < kernels.device.multiProcessorCount
      ? (info.channelSlices ?? 1)
      : 1);
  if (slices !== 1 && slices !== info.channelSlices)
    throw new RangeError(`channelSlices must be 1 or ${info.channelSlices}, got ${slices}`);
  kernels.get(name).launch({
    grid: [batch * slices, numHeadsKv, rowBlocks],
    block: [info.threads, 1, 1],
    stream,
    programmaticDependentLaunch: true,
    params: withAttention(combineParams, launch.attention)
      .set('num_splits', launch.numSplits)
      .set('o_accum', launch.oAccum)
      .set('lse_accum', launch.lseAccum)
      .set('out', launch.out)
      .set('lse', launch.lse).bytes,
  });
}

/**
 * The largest shapes these launchers can put on the grid, from the kernels' launch constants:
 * the scheduler's shared memory holds one length per sequence, the combine grid's z counts query
 * rows in blocks of rowsPerBlock, and h_kv is the decode and combine grids' y.
 */
export function kernelLimits(kernels: KernelLayoutFile['kernels']): BackendLimits {
  const scheduler = kernels.flashmla_get_metadata;
  const combineRows = Math.min(
    kernels.flashmla_combine_bf16.rowsPerBlock ?? 1,
    kernels.flashmla_combine_fp16.rowsPerBlock ?? 1,
  );
  return {
    maxBatch: Math.floor(
      (scheduler.maxDynamicSmemBytes ?? 0) / (scheduler.dynamicSmemBytesPerSequence ?? 4),
    ),
    maxRowsPerKvHead: combineRows * LAUNCH_LIMITS.maxGridYZ,
    maxHeadsKv: LAUNCH_LIMITS.maxGridYZ,
  };
}

/** Fills `count` 16-bit elements with clamp(N(0,1) * scale, ±clamp) from a counter-based RNG. */
export function launchFillNormal(
  kernels: KernelSet,
  stream: CudaStream,
  launch: {
    dst: DevicePointer;
    count: number;
    dtype: 'bf16' | 'fp16';
    seed: bigint;
    scale: number;
    clamp: number;
  },
): void {
  const name = FILL_KERNEL[launch.dtype];
  const threads = kernels.kernelInfo(name).threads;
  const blocks = Math.min(Math.max(Math.ceil(launch.count / threads), 1), 132 * 16);
  kernels.get(name).launch({
    grid: [blocks, 1, 1],
    block: [threads, 1, 1],
    stream,
    params: block(FillParamsLayout, {
      dst: launch.dst,
      count: launch.count,
      seed: launch.seed,
      scale: launch.scale,
      clamp: launch.clamp,
    }),
  });
}

/** A plain 16-byte-per-thread copy of `bytes` (a multiple of 16): the bandwidth ceiling. */
export function launchCopy(
  kernels: KernelSet,
  stream: CudaStream,
  launch: { src: DevicePointer; dst: DevicePointer; bytes: number; blocks: number },
): void {
  kernels.get('flashmla_copy').launch({
    grid: [launch.blocks, 1, 1],
    block: [kernels.kernelInfo('flashmla_copy').threads, 1, 1],
    stream,
    params: block(CopyParamsLayout, { src: launch.src, dst: launch.dst, count: launch.bytes / 16 }),
  });
}
