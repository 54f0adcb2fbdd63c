/**
 * TMA descriptors (CUtensorMap) for tiled loads, encoded on the host by cuTensorMapEncodeTiled
 * and passed to kernels inside their parameter structs. The argument rules below are the ones
 * cuda.h (CUDA 13.0) lists for the function; checking them here turns the driver's bare
 * CUDA_ERROR_INVALID_VALUE into an error that names the argument.
 */

import { LimitError, OptionError, ShapeError, StrideError } from '../errors.js';
import type { CudaDevice } from './device.js';
import { type DevicePointer, encodeIntoAlignedTensorMap } from './driver.js';

/** sizeof(CUtensorMap); kernels expect it 64-byte aligned inside their parameter struct. */
export const TENSOR_MAP_BYTES = 128;

export type TensorMapDtype = 'bf16' | 'fp16' | 'float32';
export type TensorMapInterleave = 'none' | '16B' | '32B';
export type TensorMapSwizzle = 'none' | '32B' | '64B' | '128B';
export type TensorMapL2Promotion = 'none' | '64B' | '128B' | '256B';
export type TensorMapOobFill = 'zero' | 'nan';

export interface TensorMapTiledOptions {
  readonly dtype: TensorMapDtype;
  /** Address of element [0, ..., 0]; 16-byte aligned (32 with interleave '32B'). */
  readonly globalAddress: DevicePointer;
  /** Sizes, innermost (contiguous) dimension first, as the driver wants them; rank 1 to 5. */
  readonly globalDims: readonly number[];
  /** Byte strides of dimensions 1..rank-1 (dimension 0 is contiguous): multiples of 16. */
  readonly globalStridesBytes: readonly number[];
  /** The box one TMA copy moves, innermost first; each in [1, 256]. */
  readonly boxDims: readonly number[];
  /** Traversal step per dimension, each in [1, 8]; default all 1. */
  readonly elementStrides?: readonly number[];
  /** Default 'none'. */
  readonly interleave?: TensorMapInterleave;
  /** Shared-memory swizzle; the box's inner row must fit the swizzle span. */
  readonly swizzle: TensorMapSwizzle;
  /** How much L2 fetches from DRAM at once for these loads; default 'none'. */
  readonly l2Promotion?: TensorMapL2Promotion;
  /** What out-of-bounds elements read as; default 'zero'. */
  readonly oobFill?: TensorMapOobFill;
}

/** CUtensorMapDataType values. */
const DATA_TYPE: Record<TensorMapDtype, number> = { fp16: 6, float32: 7, bf16: 9 };
const ELEMENT_BYTES: Record<TensorMapDtype, number> = { fp16: 2, float32: 4, bf16: 2 };
/** CUtensorMapInterleave values. */
const INTERLEAVE: Record<TensorMapInterleave, number> = { none: 0, '16B': 1, '32B': 2 };
/** CUtensorMapSwizzle values, with the span (bytes) each swizzles within. */
const SWIZZLE: Record<TensorMapSwizzle, { value: number; spanBytes: number }> = {
  none: { value: 0, spanBytes: 0 },
  '32B': { value: 1, spanBytes: 32 },
  '64B': { value: 2, spanBytes: 64 },
  '128B': { value: 3, spanBytes: 128 },
};
/** CUtensorMapL2promotion values. */
const L2_PROMOTION: Record<TensorMapL2Promotion, number> = {
  none: 0,
  '64B': 1,
  '128B': 2,
  '256B': 3,
};
/** CUtensorMapFloatOOBfill values: NONE fills zeros, NAN_REQUEST_ZERO_FMA fills NaN. */
const OOB_FILL: Record<TensorMapOobFill, number> = { zero: 0, nan: 1 };

const MAX_RANK = 5;
const MAX_GLOBAL_DIM = 2 ** 32;
const MAX_GLOBAL_STRIDE = 2 ** 40;
const MAX_BOX_DIM = 256;
const MAX_ELEMENT_STRIDE = 8;

/** Checks the options against cuTensorMapEncodeTiled's rules; throws naming the argument. */
export function validateTensorMapTiled(options: TensorMapTiledOptions): void {
  const { dtype, globalAddress, globalDims, globalStridesBytes, boxDims, swizzle } = options;
  const interleave = options.interleave ?? 'none';
  requireKey('dtype', dtype, DATA_TYPE);
  requireKey('interleave', interleave, INTERLEAVE);
  requireKey('swizzle', swizzle, SWIZZLE);
  requireKey('l2Promotion', options.l2Promotion ?? 'none', L2_PROMOTION);
  requireKey('oobFill', options.oobFill ?? 'zero', OOB_FILL);

  const rank = globalDims.length;
  if (rank < 1 || rank > MAX_RANK) {
    throw new ShapeError('globalDims', `1 to ${MAX_RANK} dimensions`, `${rank}`);
  }
  if (interleave !== 'none' && rank < 3) {
    throw new ShapeError(
      'globalDims',
      `at least 3 dimensions with interleave ${interleave}`,
      `${rank}`,
    );
  }
  const addressAlignment = interleave === '32B' ? 32n : 16n;
  if (typeof globalAddress !== 'bigint' || globalAddress % addressAlignment !== 0n) {
    throw new StrideError(
      'globalAddress',
      `a device address aligned to ${addressAlignment} bytes`,
      typeof globalAddress === 'bigint' ? `0x${globalAddress.toString(16)}` : String(globalAddress),
    );
  }
  globalDims.forEach((size, dim) => {
    requireIntegerIn(`globalDims[${dim}]`, size, 1, MAX_GLOBAL_DIM);
  });

  if (globalStridesBytes.length !== rank - 1) {
    throw new ShapeError(
      'globalStridesBytes',
      `${rank - 1} strides (one per dimension after the first)`,
      `${globalStridesBytes.length}`,
    );
  }
  const strideMultiple = interleave === '32B' ? 32 : 16;
  globalStridesBytes.forEach((stride, index) => {
    const argument = `globalStridesBytes[${index}]`;
    requireIntegerIn(argument, stride, strideMultiple, MAX_GLOBAL_STRIDE - 1);
    if (stride % strideMultiple !== 0) {
      throw new StrideError(argument, `a multiple of ${strideMultiple} bytes`, String(stride));
    }
  });

  if (boxDims.length !== rank) {
    throw new ShapeError('boxDims', `${rank} sizes (one per dimension)`, `${boxDims.length}`);
  }
  boxDims.forEach((size, dim) => {
    requireIntegerIn(`boxDims[${dim}]`, size, 1, MAX_BOX_DIM);
  });
  const innerBoxBytes = boxDims[0] * ELEMENT_BYTES[dtype];
  if (interleave === 'none' && innerBoxBytes % 16 !== 0) {
    throw new ShapeError(
      'boxDims[0]',
      'a row of a multiple of 16 bytes',
      `${boxDims[0]} elements = ${innerBoxBytes} bytes`,
    );
  }
  const { spanBytes } = SWIZZLE[swizzle];
  if (interleave === 'none' && swizzle !== 'none' && innerBoxBytes > spanBytes) {
    throw new ShapeError(
      'boxDims[0]',
      `a row of at most ${spanBytes} bytes with swizzle ${swizzle}`,
      `${boxDims[0]} elements = ${innerBoxBytes} bytes`,
    );
  }
  if (interleave === '32B' && swizzle !== '32B') {
    throw new OptionError('swizzle', "'32B' with interleave '32B'", swizzle);
  }

  const elementStrides = options.elementStrides ?? boxDims.map(() => 1);
  if (elementStrides.length !== rank) {
    throw new ShapeError(
      'elementStrides',
      `${rank} steps (one per dimension)`,
      `${elementStrides.length}`,
    );
  }
  elementStrides.forEach((step, dim) => {
    requireIntegerIn(`elementStrides[${dim}]`, step, 1, MAX_ELEMENT_STRIDE);
  });
}

/**
 * Encodes a tiled TMA descriptor for memory on `device` and returns its 128 bytes, to be copied
 * into a kernel's parameter block at a 64-byte aligned offset.
 */
export function encodeTensorMapTiled(
  device: CudaDevice,
  options: TensorMapTiledOptions,
): Uint8Array {
  validateTensorMapTiled(options);
  const rank = options.globalDims.length;
  const globalDims = BigUint64Array.from(options.globalDims, BigInt);
  const globalStrides = BigUint64Array.from(options.globalStridesBytes, BigInt);
  const boxDims = Uint32Array.from(options.boxDims);
  const elementStrides = Uint32Array.from(options.elementStrides ?? options.boxDims.map(() => 1));
  const dataType = DATA_TYPE[options.dtype];
  const interleave = INTERLEAVE[options.interleave ?? 'none'];
  const swizzle = SWIZZLE[options.swizzle].value;
  const l2Promotion = L2_PROMOTION[options.l2Promotion ?? 'none'];
  const oobFill = OOB_FILL[options.oobFill ?? 'zero'];

  let tensorMap: Uint8Array = new Uint8Array(TENSOR_MAP_BYTES);
  device.call('cuTensorMapEncodeTiled', (cu) => {
    const encoded = encodeIntoAlignedTensorMap((target) =>
      cu.cuTensorMapEncodeTiled(
        target,
        dataType,
        rank,
        options.globalAddress,
        globalDims,
        globalStrides,
        boxDims,
        elementStrides,
        interleave,
        swizzle,
        l2Promotion,
        oobFill,
      ),
    );
    tensorMap = encoded.tensorMap;
    return encoded.result;
  });
  return tensorMap;
}

function requireKey<K extends string>(argument: string, value: K, table: Record<K, unknown>): void {
  if (!Object.hasOwn(table, value)) {
    throw new OptionError(
      argument,
      `one of ${Object.keys(table)
        .map((key) => `'${key}'`)
        .join(', ')}`,
      String(value),
    );
  }
}

function requireIntegerIn(argument: string, value: number, low: number, high: number): void {
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new LimitError(argument, `an integer in [${low}, ${high}]`, String(value));
  }
}
