import { DtypeError, LimitError } from '../errors.js';

/** The element types the library handles, with DLPack-style names kept short. */
export type DType = 'bf16' | 'fp16' | 'float32' | 'int32';

export const DTYPES: readonly DType[] = ['bf16', 'fp16', 'float32', 'int32'];

/** Storage of a host tensor's elements: 16-bit floats are kept as their raw bits. */
export type HostArray<D extends DType = DType> = D extends 'bf16' | 'fp16'
  ? Uint16Array
  : D extends 'float32'
    ? Float32Array
    : D extends 'int32'
      ? Int32Array
      : never;

/** Throws DtypeError unless `dtype` is one of DTYPES (callers from JavaScript can pass anything). */
export function checkDtypeName(argument: string, dtype: unknown): asserts dtype is DType {
  if (!DTYPES.includes(dtype as DType)) {
    throw new DtypeError(
      argument,
      `one of ${DTYPES.join(', ')}`,
      typeof dtype === 'string' ? JSON.stringify(dtype) : String(dtype),
    );
  }
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'bf16' || dtype === 'fp16' ? 2 : 4;
}

export function isHalf(dtype: DType): dtype is 'bf16' | 'fp16' {
  return dtype === 'bf16' || dtype === 'fp16';
}

/**
 * A zeroed typed array for `length` elements of `dtype`; LimitError when the JavaScript engine
 * cannot make one that large (its typed-array length limit, or the memory it can get).
 */
export function allocateHostArray(
  dtype: DType,
  length: number,
): Uint16Array | Float32Array | Int32Array {
  try {
    switch (dtype) {
      case 'bf16':
      case 'fp16':
        return new Uint16Array(length);
      case 'float32':
        return new Float32Array(length);
      case 'int32':
        return new Int32Array(length);
    }
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new LimitError(
      'shape',
      'a host tensor small enough for one JavaScript typed array',
      `${length} ${dtype} elements (${error.message})`,
    );
  }
}
