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

export function bytesPerElement(dtype: DType): number {
  return dtype === 'bf16' || dtype === 'fp16' ? 2 : 4;
}

export function isHalf(dtype: DType): dtype is 'bf16' | 'fp16' {
  return dtype === 'bf16' || dtype === 'fp16';
}

export function allocateHostArray(
  dtype: DType,
  length: number,
): Uint16Array | Float32Array | Int32Array {
  switch (dtype) {
    case 'bf16':
    case 'fp16':
      return new Uint16Array(length);
    case 'float32':
      return new Float32Array(length);
    case 'int32':
      return new Int32Array(length);
  }
}
