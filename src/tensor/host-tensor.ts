import { DeviceMismatchError, DtypeError, ShapeError, StrideError, ValueError } from '../errors.js';
import { allocateHostArray, checkDtypeName, type DType } from './dtype.js';
import {
  bf16BitsToFloat32,
  float32ToBf16Bits,
  float32ToFp16Bits,
  fp16BitsToFloat32,
} from './half.js';
import {
  checkShape,
  contiguousStrides,
  describeDevice,
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
    checkDtypeName('dtype', dtype);
    checkStorageType(dtype, data);
    checkShape('shape', shape);
    const finalStrides = strides ?? contiguousStrides(shape);
    if (!Array.isArray(finalStrides) || finalStrides.length !== shape.length) {
      throw new StrideError(
        'strides',
        `${shape.length} strides for shape ${formatShape(shape)}`,
        Array.isArray(finalStrides) ? `${finalStrides.length}` : String(finalStrides),
      );
    }
    for (const stride of finalStrides) {
      if (!Number.isSafeInteger(stride) || stride < 0) {
        throw new StrideError('strides', 'non-negative integer strides', formatShape(finalStrides));
      }
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new ShapeError('offset', 'a non-negative integer element offset', String(offset));
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
    checkDtypeName('dtype', dtype);
    checkShape('shape', shape);
    return new HostTensor(dtype, allocateHostArray(dtype, numel(shape)), shape);
  }

  /** A new contiguous tensor filled with `value` (rounded to the dtype). */
  static full(dtype: DType, shape: readonly number[], value: number): HostTensor {
    checkDtypeName('dtype', dtype);
    const bits = encodeChecked(dtype, value, 'value');
    const tensor = HostTensor.zeros(dtype, shape);
    tensor.data.fill(bits);
    return tensor;
  }

  /**
   * A new contiguous tensor from numbers in row-major order, rounded to bf16/fp16/float32; int32
   * values must be integers in int32's range (ValueError otherwise: nothing wraps silently).
   */
  static fromValues(dtype: DType, shape: readonly number[], values: ArrayLike<number>): HostTensor {
    checkDtypeName('dtype', dtype);
    checkShape('shape', shape);
    if (values === null || typeof values !== 'object' || !Number.isSafeInteger(values.length)) {
      throw new ShapeError('values', 'an array or typed array of numbers', String(values));
    }
    if (values.length !== numel(shape)) {
      throw new ShapeError(
        'values',
        `${numel(shape)} values for shape ${formatShape(shape)}`,
        `${values.length}`,
      );
    }
    const tensor = HostTensor.zeros(dtype, shape);
    const data = tensor.data;
    for (let i = 0; i < values.length; i++)
      data[i] = encodeChecked(dtype, values[i], `values[${i}]`);
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
    checkShape('shape', shape);
    checkShape('paddedShape', paddedShape);
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

  /** Offset into `data` of an element given by its full index (not checked: for inner loops). */
  elementOffset(index: readonly number[]): number {
    let at = this.offset;
    for (let dim = 0; dim < index.length; dim++) at += index[dim] * this.strides[dim];
    return at;
  }

  /** The element at `index` as a number. */
  get(...index: number[]): number {
    this.checkIndex(index);
    return decodeElement(this.dtype, this.data[this.elementOffset(index)]);
  }

  /** Stores `value` (rounded to the dtype; int32 values must fit exactly) at `index`. */
  set(value: number, ...index: number[]): void {
    this.checkIndex(index);
    this.data[this.elementOffset(index)] = encodeChecked(this.dtype, value, 'value');
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

  /** Host memory belongs to the JavaScript heap: nothing to free. Here so that code (and `using`) works on any backend's tensors. */
  dispose(): void {}

  [Symbol.dispose](): void {}

  /** Throws ShapeError unless `index` names one element: one integer per dimension, in range. */
  private checkIndex(index: readonly number[]): void {
    const inRange =
      index.length === this.shape.length &&
      index.every((i, dim) => Number.isInteger(i) && i >= 0 && i < this.shape[dim]);
    if (!inRange) {
      throw new ShapeError(
        'index',
        `${this.shape.length} integers within shape ${formatShape(this.shape)}`,
        `[${index.map(String).join(', ')}]`,
      );
    }
  }
}

/**
 * Throws unless `value` is a host tensor: the argument of upload(), which copies host memory.
 * A tensor that lives on a GPU gets DeviceMismatchError, anything else ShapeError.
 */
export function checkHostTensor(argument: string, value: unknown): asserts value is HostTensor {
  if (value instanceof HostTensor) return;
  const device = (value as { device?: unknown } | null)?.device;
  if (device !== null && typeof device === 'object' && 'kind' in device) {
    throw new DeviceMismatchError(
      argument,
      'a HostTensor (in host memory)',
      `a tensor on ${describeDevice(device as TensorDevice)}`,
    );
  }
  throw new ShapeError(argument, 'a HostTensor', String(value));
}

function checkStorageType(dtype: DType, data: HostData): void {
  const expected =
    dtype === 'bf16' || dtype === 'fp16'
      ? Uint16Array
      : dtype === 'float32'
        ? Float32Array
        : Int32Array;
  if (!(data instanceof expected)) {
    const given = (data as { constructor?: { name?: string } } | null)?.constructor?.name;
    throw new DtypeError('data', `a ${expected.name} for dtype ${dtype}`, given ?? String(data));
  }
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * encodeElement for values that come from a caller: a number, and for int32 an integer in range
 * (a length of 3e9 must not become -1294967296).
 */
function encodeChecked(dtype: DType, value: number, argument: string): number {
  if (typeof value !== 'number') {
    throw new ValueError(
      argument,
      'a number',
      typeof value === 'string' ? JSON.stringify(value) : String(value),
    );
  }
  if (dtype === 'int32' && !(Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX)) {
    throw new ValueError(
      argument,
      `an int32 value (an integer in [${INT32_MIN}, ${INT32_MAX}])`,
      String(value),
    );
  }
  return encodeElement(dtype, value);
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
