import { DtypeError, ShapeError, StrideError } from '../errors.js';
import { allocateHostArray, type DType } from './dtype.js';
import {
  bf16BitsToFloat32,
  float32ToBf16Bits,
  float32ToFp16Bits,
  fp16BitsToFloat32,
} from './half.js';
import {
  contiguousStrides,
  formatShape,
  HOST,
  isContiguous,
  numel,
  storageSpan,
  type Tensor,
  type TensorDevice,
} from './tensor.js';

export type HostData = Uint16Array | Float32Array | Int32Array;

/**
 * A tensor in host memory: a typed array, an element offset into it, a shape and element strides.
 * bf16 and fp16 elements are stored as their raw 16-bit patterns; `get`/`set` and the float32
 * helpers convert (round to nearest even on the way in).
 */
export class HostTensor implements Tensor {
  readonly device: TensorDevice = HOST;
  readonly dtype: DType;
  readonly data: HostData;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Element offset of index [0, 0, ...] in `data`. */
  readonly offset: number;

  constructor(
    dtype: DType,
    data: HostData,
    shape: readonly number[],
    strides?: readonly number[],
    offset = 0,
  ) {
    checkStorageType(dtype, data);
    const finalStrides = strides ?? contiguousStrides(shape);
    if (finalStrides.length !== shape.length) {
      throw new StrideError(
        'strides',
        `${shape.length} strides for shape ${formatShape(shape)}`,
        `${finalStrides.length}`,
      );
    }
    for (const size of shape) {
      if (!Number.isSafeInteger(size) || size < 0)
        throw new ShapeError('shape', 'non-negative integer sizes', formatShape(shape));
    }
    for (const stride of finalStrides) {
      if (!Number.isSafeInteger(stride) || stride < 0) {
        throw new StrideError('strides', 'non-negative integer strides', formatShape(finalStrides));
      }
    }
    if (offset + storageSpan(shape, finalStrides) > data.length) {
      throw new ShapeError(
        'data',
        `at least ${offset + storageSpan(shape, finalStrides)} elements for shape ${formatShape(shape)}`,
        `${data.length}`,
      );
    }
    this.dtype = dtype;
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze([...finalStrides]);
    this.offset = offset;
  }

  /** A new zero-filled contiguous tensor. */
  static zeros(dtype: DType, shape: readonly number[]): HostTensor {
    return new HostTensor(dtype, allocateHostArray(dtype, numel(shape)), shape);
  }

  /** A new contiguous tensor filled with `value` (rounded to the dtype). */
  static full(dtype: DType, shape: readonly number[], value: number): HostTensor {
    const tensor = HostTensor.zeros(dtype, shape);
    tensor.data.fill(encodeElement(dtype, value));
    return tensor;
  }

  /** A new contiguous tensor from numbers in row-major order (rounded to the dtype). */
  static fromValues(dtype: DType, shape: readonly number[], values: ArrayLike<number>): HostTensor {
    if (values.length !== numel(shape)) {
      throw new ShapeError(
        'values',
        `${numel(shape)} values for shape ${formatShape(shape)}`,
        `${values.length}`,
      );
    }
    const tensor = HostTensor.zeros(dtype, shape);
    const data = tensor.data;
    for (let i = 0; i < values.length; i++) data[i] = encodeElement(dtype, values[i]);
    return tensor;
  }

  /**
   * A contiguous tensor of `shape` laid out inside a larger buffer whose outer dimensions are
   * padded: `paddedShape` gives the storage extent of every dimension (>= shape), so the
   * strides are those of paddedShape. Padding elements are filled with `padValue`.
   */
  static padded(
    dtype: DType,
    shape: readonly number[],
    paddedShape: readonly number[],
    padValue = Number.NaN,
  ): HostTensor {
    if (paddedShape.length !== shape.length || paddedShape.some((size, dim) => size < shape[dim])) {
      throw new ShapeError(
        'paddedShape',
        `a shape at least ${formatShape(shape)}`,
        formatShape(paddedShape),
      );
    }
    const storage = HostTensor.full(dtype, paddedShape, padValue);
    return new HostTensor(dtype, storage.data, shape, contiguousStrides(paddedShape), 0);
  }

  get numel(): number {
    return numel(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  isContiguous(): boolean {
    return isContiguous(this);
  }

  /** Offset into `data` of an element given by its full index. */
  elementOffset(index: readonly number[]): number {
    let at = this.offset;
    for (let dim = 0; dim < index.length; dim++) at += index[dim] * this.strides[dim];
    return at;
  }

  /** The element at `index` as a number. */
  get(...index: number[]): number {
    return decodeElement(this.dtype, this.data[this.elementOffset(index)]);
  }

  /** Stores `value` (rounded to the dtype) at `index`. */
  set(value: number, ...index: number[]): void {
    this.data[this.elementOffset(index)] = encodeElement(this.dtype, value);
  }

  /** All elements in row-major order, decoded to float64 numbers. */
  toFloat64Array(): Float64Array {
    const out = new Float64Array(this.numel);
    let i = 0;
    this.forEachOffset((at) => {
      out[i++] = decodeElement(this.dtype, this.data[at]);
    });
    return out;
  }

  /** A contiguous copy (same dtype). */
  contiguous(): HostTensor {
    const copy = HostTensor.zeros(this.dtype, this.shape);
    let i = 0;
    this.forEachOffset((at) => {
      copy.data[i++] = this.data[at];
    });
    return copy;
  }

  /** The same storage seen through another shape/strides/offset. */
  view(shape: readonly number[], strides: readonly number[], offset = this.offset): HostTensor {
    return new HostTensor(this.dtype, this.data, shape, strides, offset);
  }

  /** Visits the storage offset of every element, in row-major order. */
  forEachOffset(visit: (offset: number) => void): void {
    const rank = this.shape.length;
    if (this.numel === 0) return;
    if (rank === 0) {
      visit(this.offset);
      return;
    }
    const index = new Array<number>(rank).fill(0);
    let at = this.offset;
    for (;;) {
      visit(at);
      let dim = rank - 1;
      while (dim >= 0) {
        index[dim]++;
        at += this.strides[dim];
        if (index[dim] < this.shape[dim]) break;
        at -= index[dim] * this.strides[dim];
        index[dim] = 0;
        dim--;
      }
      if (dim < 0) return;
    }
  }

  async toHost(): Promise<HostTensor> {
    return this;
  }

  toHostSync(): HostTensor {
    return this;
  }
}

function checkStorageType(dtype: DType, data: HostData): void {
  const expected =
    dtype === 'bf16' || dtype === 'fp16'
      ? Uint16Array
      : dtype === 'float32'
        ? Float32Array
        : Int32Array;
  if (!(data instanceof expected)) {
    throw new DtypeError('data', `a ${expected.name} for dtype ${dtype}`, data.constructor.name);
  }
}

export function decodeElement(dtype: DType, stored: number): number {
  switch (dtype) {
    case 'bf16':
      return bf16BitsToFloat32(stored);
    case 'fp16':
      return fp16BitsToFloat32(stored);
    default:
      return stored;
  }
}

export function encodeElement(dtype: DType, value: number): number {
  switch (dtype) {
    case 'bf16':
      return float32ToBf16Bits(value);
    case 'fp16':
      return float32ToFp16Bits(value);
    case 'int32':
      return value | 0;
    default:
      return value;
  }
}
