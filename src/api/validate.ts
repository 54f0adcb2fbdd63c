/**
 * Argument checks for the public API. Everything here runs before any backend does work, and
 * every failure names the argument, what was expected and what was given.
 */
import { HEAD_DIM_K, HEAD_DIM_V, PAGE_BLOCK_SIZE } from '../config.js';
import {
  DeviceMismatchError,
  DtypeError,
  LimitError,
  OptionError,
  ShapeError,
  StrideError,
  ValueError,
} from '../errors.js';
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

export interface DecodeOptionsInput {
  softmaxScale?: number;
  causal?: boolean;
}

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

/** All tensors must live in one place; returns it. */
export function checkSameDevice(tensors: Record<string, Tensor>): TensorDevice {
  const entries = Object.entries(tensors);
  const [firstName, first] = entries[0];
  for (const [name, tensor] of entries.slice(1))
    checkLivesOn(name, tensor, first.device, firstName);
  return first.device;
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

/** cacheSeqlens: int32 [b], contiguous, b > 0. Returns b. */
export function checkCacheSeqlens(cacheSeqlens: unknown): number {
  checkTensor('cacheSeqlens', cacheSeqlens);
  checkDtype('cacheSeqlens', cacheSeqlens, ['int32']);
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

/** Everything about a decode call that the shapes, dtypes, strides and options can tell. */
export function checkDecodeArguments(
  q: unknown,
  kCache: unknown,
  blockTable: unknown,
  cacheSeqlens: unknown,
  headDimV: unknown,
  options: DecodeOptionsInput,
): DecodeShape {
  checkTensor('q', q);
  checkTensor('kCache', kCache);
  checkTensor('blockTable', blockTable);
  checkTensor('cacheSeqlens', cacheSeqlens);

  checkDtype('q', q, ['bf16', 'fp16']);
  if (kCache.dtype !== q.dtype)
    throw new DtypeError('kCache', `dtype ${q.dtype} (q's dtype)`, kCache.dtype);
  checkDtype('blockTable', blockTable, ['int32']);
  const device = checkSameDevice({ q, kCache, blockTable, cacheSeqlens });

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

  for (const [name, tensor] of [
    ['q', q],
    ['kCache', kCache],
    ['blockTable', blockTable],
  ] as const) {
    checkLastDimContiguous(name, tensor);
    checkSizesFitInt32(name, tensor);
  }
  checkOuterStridesAligned('q', q);
  checkOuterStridesAligned('kCache', kCache);

  const rowsPerKvHead = seqlenQ * (numHeadsQ / numHeadsKv);
  if (rowsPerKvHead > INT32_MAX || batch * seqlenQ * numHeadsQ > INT32_MAX) {
    throw new LimitError('q', 'b * s_q * h_q below 2^31', `${batch} * ${seqlenQ} * ${numHeadsQ}`);
  }
  if (numHeadsKv > 65535)
    throw new LimitError('kCache', 'h_kv <= 65535 (grid dimension)', `${numHeadsKv}`);

  const { softmaxScale, causal } = checkDecodeOptions(options);
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
    causal,
  };
}

export function checkDecodeOptions(options: DecodeOptionsInput): {
  softmaxScale: number | undefined;
  causal: boolean;
} {
  if (options === null || typeof options !== 'object')
    throw new OptionError('options', 'an object', describeValue(options));
  const { softmaxScale, causal } = options;
  if (
    softmaxScale !== undefined &&
    (typeof softmaxScale !== 'number' || !Number.isFinite(softmaxScale) || softmaxScale <= 0)
  ) {
    throw new OptionError('softmaxScale', 'a finite number > 0', describeValue(softmaxScale));
  }
  if (causal !== undefined && typeof causal !== 'boolean') {
    throw new OptionError('causal', 'a boolean', describeValue(causal));
  }
  return { softmaxScale, causal: causal ?? false };
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
    checkDtype('out', out, [shape.dtype]);
    const expected = [shape.batch, shape.seqlenQ, shape.numHeadsQ, HEAD_DIM_V];
    if (formatShape(out.shape) !== formatShape(expected)) {
      throw new ShapeError('out', `shape ${formatShape(expected)}`, formatShape(out.shape));
    }
    checkLastDimContiguous('out', out);
    checkOuterStridesAligned('out', out);
    checkSizesFitInt32('out', out);
    checkLivesOn('out', out, shape.device, 'q');
  }
  if (lse !== undefined) {
    checkTensor('lse', lse);
    checkDtype('lse', lse, ['float32']);
    const expected = [shape.batch, shape.numHeadsQ, shape.seqlenQ];
    if (formatShape(lse.shape) !== formatShape(expected)) {
      throw new ShapeError('lse', `shape ${formatShape(expected)}`, formatShape(lse.shape));
    }
    if (!isContiguous(lse))
      throw new StrideError('lse', 'a contiguous tensor', `strides ${formatShape(lse.strides)}`);
    checkLivesOn('lse', lse, shape.device, 'q');
  }
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return name ? `a ${name}` : typeof value;
}
