/**
 * Argument checks for the public API. Everything here runs before any backend does work, and
 * every failure names the argument, what was expected and what was given.
 */
import type { DecodeCall, DecodeShape, MetadataCall } from '../backend/backend.js';
import { type MetadataTensors, MlaMetadata } from '../backend/metadata.js';
import { HEAD_DIM_K, HEAD_DIM_V, PAGE_BLOCK_SIZE } from '../config.js';
import { DeviceTensor } from '../cuda/device-tensor.js';
import { CudaStream } from '../cuda/stream.js';
import {
  DeviceMismatchError,
  DtypeError,
  LimitError,
  OptionError,
  ShapeError,
  StrideError,
  ValueError,
} from '../errors.js';
import { checkOptionKeys, describeValue } from '../options.js';
import type { DType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import {
  describeDevice,
  formatShape,
  isContiguous,
  sameDevice,
  type Tensor,
  type TensorDevice,
} from '../tensor/tensor.js';

const INT32_MAX = 2 ** 31 - 1;
/** Outer strides of q and kCache must keep rows 16-byte aligned (what TMA and 16-byte loads need). */
export const STRIDE_ALIGN_ELEMENTS = 8;

export function checkTensor(name: string, value: unknown): asserts value is Tensor {
  const tensor = value as Partial<Tensor> | null | undefined;
  if (
    tensor === null ||
    typeof tensor !== 'object' ||
    typeof tensor.dtype !== 'string' ||
    !Array.isArray(tensor.shape) ||
    !Array.isArray(tensor.strides) ||
    typeof tensor.device !== 'object'
  ) {
    throw new ShapeError(name, 'a tensor (HostTensor or DeviceTensor)', describeValue(value));
  }
}

export function checkDtype(name: string, tensor: Tensor, allowed: readonly DType[]): void {
  if (!allowed.includes(tensor.dtype)) {
    throw new DtypeError(name, `dtype ${allowed.join(' or ')}`, tensor.dtype);
  }
}

export function checkRank(name: string, tensor: Tensor, rank: number, layout: string): void {
  if (tensor.shape.length !== rank) {
    throw new ShapeError(
      name,
      `${rank} dimensions ${layout}`,
      `shape ${formatShape(tensor.shape)}`,
    );
  }
}

function checkDim(
  name: string,
  tensor: Tensor,
  dim: number,
  label: string,
  expected: number,
  why = '',
): void {
  if (tensor.shape[dim] !== expected) {
    throw new ShapeError(
      name,
      `${label} (dim ${dim}) = ${expected}${why ? ` ${why}` : ''}`,
      `${tensor.shape[dim]} in shape ${formatShape(tensor.shape)}`,
    );
  }
}

function checkLastDimContiguous(name: string, tensor: Tensor): void {
  const last = tensor.shape.length - 1;
  if (tensor.shape[last] > 1 && tensor.strides[last] !== 1) {
    throw new StrideError(
      name,
      'a contiguous last dimension (stride 1)',
      `strides ${formatShape(tensor.strides)}`,
    );
  }
}

function checkOuterStridesAligned(name: string, tensor: Tensor): void {
  for (let dim = 0; dim < tensor.shape.length - 1; dim++) {
    if (tensor.strides[dim] % STRIDE_ALIGN_ELEMENTS !== 0) {
      throw new StrideError(
        name,
        `outer strides that are multiples of ${STRIDE_ALIGN_ELEMENTS} elements (16 bytes)`,
        `stride ${tensor.strides[dim]} in dim ${dim} of strides ${formatShape(tensor.strides)}`,
      );
    }
  }
}

/** On a GPU, element [0, ...] of q, kCache and out must sit at a 16-byte aligned address too. */
function checkAddressAligned(name: string, tensor: Tensor): void {
  if (tensor instanceof DeviceTensor && tensor.ptr % 16n !== 0n) {
    throw new StrideError(
      name,
      'a 16-byte aligned address (16-byte loads, TMA and bulk copies need it)',
      `0x${tensor.ptr.toString(16)}`,
    );
  }
}

function checkSizesFitInt32(name: string, tensor: Tensor): void {
  for (let dim = 0; dim < tensor.shape.length; dim++) {
    if (tensor.shape[dim] > INT32_MAX) {
      throw new LimitError(
        name,
        `every size below 2^31 (the kernels' int32 sizes)`,
        `${tensor.shape[dim]} in dim ${dim}`,
      );
    }
  }
  let span = 1;
  for (let dim = 0; dim < tensor.shape.length; dim++)
    span += Math.max(tensor.shape[dim] - 1, 0) * tensor.strides[dim];
  if (!Number.isSafeInteger(span)) {
    throw new LimitError(
      name,
      'a storage span below 2^53 elements',
      `strides ${formatShape(tensor.strides)}`,
    );
  }
}

function checkLivesOn(name: string, tensor: Tensor, device: TensorDevice, where: string): void {
  if (!sameDevice(device, tensor.device)) {
    throw new DeviceMismatchError(
      name,
      `to live where ${where} lives (${describeDevice(device)})`,
      describeDevice(tensor.device),
    );
  }
}

export function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new OptionError(name, 'a positive integer', describeValue(value));
  }
  return value;
}

const INT32: readonly DType[] = ['int32'];
const HALF: readonly DType[] = ['bf16', 'fp16'];
const FLOAT32: readonly DType[] = ['float32'];

/** cacheSeqlens: int32 [b], contiguous, b > 0. Returns b. */
export function checkCacheSeqlens(cacheSeqlens: unknown): number {
  checkTensor('cacheSeqlens', cacheSeqlens);
  checkDtype('cacheSeqlens', cacheSeqlens, INT32);
  checkRank('cacheSeqlens', cacheSeqlens, 1, '[b]');
  if (cacheSeqlens.shape[0] <= 0) {
    throw new ShapeError(
      'cacheSeqlens',
      'b > 0 sequences',
      `shape ${formatShape(cacheSeqlens.shape)}`,
    );
  }
  if (!isContiguous(cacheSeqlens)) {
    throw new StrideError(
      'cacheSeqlens',
      'a contiguous tensor',
      `strides ${formatShape(cacheSeqlens.strides)}`,
    );
  }
  checkSizesFitInt32('cacheSeqlens', cacheSeqlens);
  return cacheSeqlens.shape[0];
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

const METADATA_OPTION_KEYS: ReadonlySet<string> = new Set<keyof MetadataOptions>([
  'stream',
  'into',
]);

/** Everything about a getMlaMetadata call that its arguments can tell. */
export function checkMetadataCall(
  cacheSeqlens: unknown,
  numQRowsPerKvHead: unknown,
  numHeadsK: unknown,
  options: MetadataOptions | undefined,
): MetadataCall {
  checkTensor('cacheSeqlens', cacheSeqlens);
  const batch = checkCacheSeqlens(cacheSeqlens);
  checkPositiveInteger('numQRowsPerKvHead', numQRowsPerKvHead);
  checkPositiveInteger('numHeadsK', numHeadsK);
  checkOptionKeys('options', options, METADATA_OPTION_KEYS);
  const into = options?.into;
  if (into !== undefined) {
    if (!(into instanceof MlaMetadata))
      throw new OptionError('into', 'an MlaMetadata from getMlaMetadata', describeValue(into));
    checkLivesOn('into', into.tileSchedulerMetadata, cacheSeqlens.device, 'cacheSeqlens');
  }
  const stream = checkStream(options?.stream, cacheSeqlens.device);
  return {
    cacheSeqlens,
    batch,
    numQRowsPerKvHead: numQRowsPerKvHead as number,
    numHeadsK: numHeadsK as number,
    into,
    stream,
  };
}

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

const DECODE_OPTION_KEYS: ReadonlySet<string> = new Set<keyof DecodeOptions>([
  'softmaxScale',
  'causal',
  'out',
  'lse',
  'validateValues',
  'stream',
]);

/**
 * Everything about a flashMlaWithKvcache call: shapes, dtypes, strides, options, outputs, where
 * the schedule lives, and (on the host always, on a GPU when asked) the values of the lengths
 * and of the used block-table entries.
 */
export function checkDecodeCall(
  q: unknown,
  kCache: unknown,
  blockTable: unknown,
  cacheSeqlens: unknown,
  headDimV: unknown,
  schedule: MlaMetadata | MetadataTensors,
  options: DecodeOptions | undefined,
): DecodeCall {
  checkOptionKeys('options', options, DECODE_OPTION_KEYS);
  const shape = checkDecodeArguments(q, kCache, blockTable, cacheSeqlens, headDimV, options);
  checkTensor('tileSchedulerMetadata', schedule.tileSchedulerMetadata);
  checkTensor('numSplits', schedule.numSplits);
  checkLivesOn('tileSchedulerMetadata', schedule.tileSchedulerMetadata, shape.device, 'q');
  checkLivesOn('numSplits', schedule.numSplits, shape.device, 'q');
  const out = options?.out;
  const lse = options?.lse;
  checkOutputs(out, lse, shape);
  const stream = checkStream(options?.stream, shape.device);
  const validateValues = options?.validateValues;
  if (validateValues !== undefined && typeof validateValues !== 'boolean') {
    throw new OptionError('validateValues', 'a boolean', describeValue(validateValues));
  }
  const call = {
    q: q as Tensor,
    kCache: kCache as Tensor,
    blockTable: blockTable as Tensor,
    cacheSeqlens: cacheSeqlens as Tensor,
    shape,
    schedule,
    out,
    lse,
    stream,
  };
  if (shape.device.kind === 'host' || validateValues === true) {
    // Read on the call's stream, after the work that may have written them.
    const read = (tensor: Tensor) =>
      tensor instanceof DeviceTensor ? tensor.toHostSync(stream) : tensor.toHostSync();
    checkDecodeValues(read(call.blockTable), read(call.cacheSeqlens), shape);
  }
  return call;
}

/** Everything about a decode call that the shapes, dtypes, strides and options can tell. */
export function checkDecodeArguments(
  q: unknown,
  kCache: unknown,
  blockTable: unknown,
  cacheSeqlens: unknown,
  headDimV: unknown,
  options: Pick<DecodeOptions, 'softmaxScale' | 'causal'> | undefined,
): DecodeShape {
  checkTensor('q', q);
  checkTensor('kCache', kCache);
  checkTensor('blockTable', blockTable);
  checkTensor('cacheSeqlens', cacheSeqlens);

  checkDtype('q', q, HALF);
  if (kCache.dtype !== q.dtype)
    throw new DtypeError('kCache', `dtype ${q.dtype} (q's dtype)`, kCache.dtype);
  checkDtype('blockTable', blockTable, INT32);
  const device = q.device;
  checkLivesOn('kCache', kCache, device, 'q');
  checkLivesOn('blockTable', blockTable, device, 'q');
  checkLivesOn('cacheSeqlens', cacheSeqlens, device, 'q');

  checkRank('q', q, 4, '[b, s_q, h_q, 576]');
  checkRank('kCache', kCache, 4, '[numBlocks, 64, h_kv, 576]');
  checkRank('blockTable', blockTable, 2, '[b, maxBlocksPerSeq]');
  const batch = checkCacheSeqlens(cacheSeqlens);

  const [qBatch, seqlenQ, numHeadsQ] = q.shape;
  const [numBlocks, , numHeadsKv] = kCache.shape;
  checkDim('q', q, 3, 'head dim', HEAD_DIM_K);
  checkDim('kCache', kCache, 1, 'block size', PAGE_BLOCK_SIZE);
  checkDim('kCache', kCache, 3, 'head dim', HEAD_DIM_K);
  if (headDimV !== HEAD_DIM_V)
    throw new ShapeError('headDimV', `${HEAD_DIM_V}`, describeValue(headDimV));
  if (qBatch !== batch) {
    throw new ShapeError(
      'q',
      `batch (dim 0) = ${batch} (cacheSeqlens' length)`,
      `${qBatch} in shape ${formatShape(q.shape)}`,
    );
  }
  checkDim('blockTable', blockTable, 0, 'batch', batch, "(cacheSeqlens' length)");
  if (seqlenQ <= 0)
    throw new ShapeError('q', 's_q (dim 1) >= 1', `${seqlenQ} in shape ${formatShape(q.shape)}`);
  if (numHeadsQ <= 0)
    throw new ShapeError('q', 'h_q (dim 2) >= 1', `${numHeadsQ} in shape ${formatShape(q.shape)}`);
  if (numHeadsKv <= 0) {
    throw new ShapeError(
      'kCache',
      'h_kv (dim 2) >= 1',
      `${numHeadsKv} in shape ${formatShape(kCache.shape)}`,
    );
  }
  if (numHeadsQ % numHeadsKv !== 0) {
    throw new ShapeError(
      'q',
      `h_q (dim 2) divisible by h_kv = ${numHeadsKv} (kCache dim 2)`,
      `${numHeadsQ}`,
    );
  }

  checkLastDimContiguous('q', q);
  checkLastDimContiguous('kCache', kCache);
  checkLastDimContiguous('blockTable', blockTable);
  checkSizesFitInt32('q', q);
  checkSizesFitInt32('kCache', kCache);
  checkSizesFitInt32('blockTable', blockTable);
  checkOuterStridesAligned('q', q);
  checkOuterStridesAligned('kCache', kCache);
  checkAddressAligned('q', q);
  checkAddressAligned('kCache', kCache);

  const rowsPerKvHead = seqlenQ * (numHeadsQ / numHeadsKv);
  if (rowsPerKvHead > INT32_MAX || batch * seqlenQ * numHeadsQ > INT32_MAX) {
    throw new LimitError('q', 'b * s_q * h_q below 2^31', `${batch} * ${seqlenQ} * ${numHeadsQ}`);
  }

  const softmaxScale = options?.softmaxScale;
  if (
    softmaxScale !== undefined &&
    (typeof softmaxScale !== 'number' || !Number.isFinite(softmaxScale) || softmaxScale <= 0)
  ) {
    throw new OptionError('softmaxScale', 'a finite number > 0', describeValue(softmaxScale));
  }
  const causal = options?.causal;
  if (causal !== undefined && typeof causal !== 'boolean') {
    throw new OptionError('causal', 'a boolean', describeValue(causal));
  }
  return {
    dtype: q.dtype as 'bf16' | 'fp16',
    device,
    batch,
    seqlenQ,
    numHeadsQ,
    numHeadsKv,
    groupSize: numHeadsQ / numHeadsKv,
    rowsPerKvHead,
    numBlocks,
    maxBlocksPerSeq: blockTable.shape[1],
    softmaxScale: softmaxScale ?? 1 / Math.sqrt(HEAD_DIM_K),
    causal: causal ?? false,
  };
}

/** A CudaStream of the device the call's tensors live on, or undefined; ignored on the host. */
function checkStream(stream: unknown, device: TensorDevice): CudaStream | undefined {
  if (stream === undefined || device.kind === 'host') return undefined;
  if (!(stream instanceof CudaStream))
    throw new OptionError('stream', 'a CudaStream', describeValue(stream));
  if (stream.device.ordinal !== device.ordinal) {
    throw new DeviceMismatchError(
      'stream',
      `a stream of ${describeDevice(device)} (where the tensors live)`,
      `a stream of cuda:${stream.device.ordinal}`,
    );
  }
  return stream;
}

/**
 * The value checks that need the data: lengths within [0, capacity] and every used block id
 * inside the cache. Entries past a sequence's end are padding and are not looked at.
 */
export function checkDecodeValues(
  blockTable: HostTensor,
  cacheSeqlens: HostTensor,
  shape: DecodeShape,
): void {
  const capacity = shape.maxBlocksPerSeq * PAGE_BLOCK_SIZE;
  for (let i = 0; i < shape.batch; i++) {
    const length = cacheSeqlens.get(i);
    if (length < 0 || length > capacity) {
      throw new ValueError(
        `cacheSeqlens[${i}]`,
        `a length in [0, ${capacity}] (blockTable holds ${shape.maxBlocksPerSeq} blocks of ${PAGE_BLOCK_SIZE})`,
        `${length}`,
      );
    }
    const usedBlocks = Math.ceil(length / PAGE_BLOCK_SIZE);
    for (let j = 0; j < usedBlocks; j++) {
      const blockId = blockTable.get(i, j);
      if (blockId < 0 || blockId >= shape.numBlocks) {
        throw new ValueError(
          `blockTable[${i}][${j}]`,
          `a block id in [0, ${shape.numBlocks}) (used by sequence ${i} of length ${length})`,
          `${blockId}`,
        );
      }
    }
  }
}

/** Checks caller-provided output tensors against the shapes the call produces. */
export function checkOutputs(out: unknown, lse: unknown, shape: DecodeShape): void {
  if (out !== undefined) {
    checkTensor('out', out);
    checkDtype('out', out, shape.dtype === 'bf16' ? BF16 : FP16);
    const s = out.shape;
    if (
      s.length !== 4 ||
      s[0] !== shape.batch ||
      s[1] !== shape.seqlenQ ||
      s[2] !== shape.numHeadsQ ||
      s[3] !== HEAD_DIM_V
    ) {
      const expected = [shape.batch, shape.seqlenQ, shape.numHeadsQ, HEAD_DIM_V];
      throw new ShapeError('out', `shape ${formatShape(expected)}`, formatShape(out.shape));
    }
    checkLastDimContiguous('out', out);
    checkOuterStridesAligned('out', out);
    checkAddressAligned('out', out);
    checkSizesFitInt32('out', out);
    checkLivesOn('out', out, shape.device, 'q');
  }
  if (lse !== undefined) {
    checkTensor('lse', lse);
    checkDtype('lse', lse, FLOAT32);
    const s = lse.shape;
    if (
      s.length !== 3 ||
      s[0] !== shape.batch ||
      s[1] !== shape.numHeadsQ ||
      s[2] !== shape.seqlenQ
    ) {
      const expected = [shape.batch, shape.numHeadsQ, shape.seqlenQ];
      throw new ShapeError('lse', `shape ${formatShape(expected)}`, formatShape(lse.shape));
    }
    if (!isContiguous(lse))
      throw new StrideError('lse', 'a contiguous tensor', `strides ${formatShape(lse.strides)}`);
    checkLivesOn('lse', lse, shape.device, 'q');
  }
}

const BF16: readonly DType[] = ['bf16'];
const FP16: readonly DType[] = ['fp16'];
