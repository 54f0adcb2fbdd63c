import { DisposedError, DtypeError, OptionError, ShapeError, StrideError } from '../errors.js';
import { allocateHostArray, bytesPerElement, checkDtypeName, type DType } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';
import {
  checkShape,
  contiguousStrides,
  formatShape,
  isContiguous,
  numel,
  storageSpan,
  type Tensor,
  type TensorDevice,
} from '../tensor/tensor.js';
import type { CudaDevice } from './device.js';
import type { DevicePointer } from './driver.js';
import {
  copyDeviceToHostSync,
  copyHostToDevice,
  DeviceBuffer,
  type DeviceSpan,
  fill,
} from './memory.js';
import type { CudaStream } from './stream.js';

/** Quiet-NaN bit patterns, for filling outputs before a call so unwritten elements show. */
const NAN_BITS = { bf16: 0x7fc0, fp16: 0x7e00, float32: 0x7fc00000 } as const;

/**
 * A tensor in GPU memory (DLPack's model): a device pointer, dtype, shape, element strides and a
 * byte offset. It owns its memory when made by empty(), fromHost() or adopt(), and borrows it
 * when made by wrap() (memory another library allocated; never freed here). Owned memory is
 * freed in stream order by dispose() (or `using`), or by a finalizer once the tensor is dropped.
 *
 * Reads back to the host wait on a stream, the device's default stream unless one is given:
 * the stream the kernels that wrote it ran on.
 */
export class DeviceTensor implements Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Strides in elements. */
  readonly strides: readonly number[];
  /** Bytes from the memory's base to element [0, ..., 0]. */
  readonly byteOffset: number;
  readonly device: TensorDevice;
  readonly cudaDevice: CudaDevice;
  /** The allocation this tensor frees on dispose(); null for wrapped foreign memory. */
  readonly owner: DeviceBuffer | null;
  private readonly base: DevicePointer;
  private isDisposed = false;

  private constructor(
    cudaDevice: CudaDevice,
    base: DevicePointer,
    dtype: DType,
    shape: readonly number[],
    strides: readonly number[] | undefined,
    byteOffset: number,
    owner: DeviceBuffer | null,
  ) {
    checkDtypeName('dtype', dtype);
    checkShape('shape', shape);
    const finalStrides = strides ?? contiguousStrides(shape);
    checkLayout(shape, finalStrides, byteOffset);
    const elementBytes = bytesPerElement(dtype);
    if (numel(shape) > 0) {
      if (base === 0n) throw new OptionError('ptr', 'a device pointer', '0x0 (null)');
      const first = base + BigInt(byteOffset);
      if (first % BigInt(elementBytes) !== 0n) {
        throw new StrideError(
          'ptr',
          `element [0] aligned to ${elementBytes} bytes for ${dtype}`,
          `0x${first.toString(16)}`,
        );
      }
    }
    this.cudaDevice = cudaDevice;
    this.device = Object.freeze({ kind: 'cuda', ordinal: cudaDevice.ordinal });
    this.base = base;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze([...finalStrides]);
    this.byteOffset = byteOffset;
    this.owner = owner;
  }

  /**
   * A new contiguous tensor with uninitialized contents, allocated in the order of `stream`
   * (default: the device's default stream).
   */
  static empty(
    device: CudaDevice,
    dtype: DType,
    shape: readonly number[],
    stream?: CudaStream,
  ): DeviceTensor {
    checkDtypeName('dtype', dtype);
    checkShape('shape', shape);
    return DeviceTensor.adopt(
      DeviceBuffer.alloc(device, numel(shape) * bytesPerElement(dtype), stream),
      dtype,
      shape,
    );
  }

  /** Uploads `host` into a new contiguous tensor; the copy is enqueued on `stream`. */
  static fromHost(device: CudaDevice, host: HostTensor, stream?: CudaStream): DeviceTensor {
    const source = host.isContiguous() ? host : host.contiguous();
    const tensor = DeviceTensor.empty(device, host.dtype, host.shape, stream);
    try {
      copyHostToDevice(
        tensor.storage(),
        source.data.subarray(source.offset, source.offset + source.numel),
        stream,
      );
    } catch (error) {
      tensor.dispose();
      throw error;
    }
    return tensor;
  }

  /**
   * A view of memory someone else allocated; nothing is copied and dispose() frees nothing.
   * Element [0, ..., 0] is at `ptr + byteOffset`.
   */
  static wrap(
    device: CudaDevice,
    ptr: DevicePointer,
    dtype: DType,
    shape: readonly number[],
    strides?: readonly number[],
    byteOffset = 0,
  ): DeviceTensor {
    device.assertUsable('DeviceTensor.wrap');
    if (typeof ptr !== 'bigint' || ptr < 0n || ptr >= 2n ** 64n) {
      throw new OptionError(
        'ptr',
        'a device address as a bigint (e.g. 0x7f0000000000n)',
        typeof ptr === 'bigint' ? `0x${ptr.toString(16)}` : `${typeof ptr} ${String(ptr)}`,
      );
    }
    return new DeviceTensor(device, ptr, dtype, shape, strides, byteOffset, null);
  }

  /** A view into `buffer` that takes ownership of it: disposing the tensor frees the buffer. */
  static adopt(
    buffer: DeviceBuffer,
    dtype: DType,
    shape: readonly number[],
    strides?: readonly number[],
    byteOffset = 0,
  ): DeviceTensor {
    const tensor = new DeviceTensor(
      buffer.device,
      buffer.ptr,
      dtype,
      shape,
      strides,
      byteOffset,
      buffer,
    );
    const end = byteOffset + storageSpan(tensor.shape, tensor.strides) * bytesPerElement(dtype);
    if (tensor.numel > 0 && end > buffer.bytes) {
      throw new ShapeError(
        'buffer',
        `at least ${end} bytes for this view`,
        `${buffer.bytes} bytes`,
      );
    }
    return tensor;
  }

  /** Address of element [0, ..., 0]. */
  get ptr(): DevicePointer {
    this.assertAlive();
    return this.base + BigInt(this.byteOffset);
  }

  get numel(): number {
    return numel(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  isContiguous(): boolean {
    return isContiguous(this);
  }

  /** The device bytes the view spans, from element [0, ..., 0] to its last element. */
  storage(): DeviceSpan {
    return {
      device: this.cudaDevice,
      ptr: this.ptr,
      bytes: storageSpan(this.shape, this.strides) * bytesPerElement(this.dtype),
      buffer: this.owner,
    };
  }

  /**
   * Declares that work enqueued on `stream` uses this tensor (see DeviceBuffer.useOn): the
   * stream waits for the allocation, the free waits for the stream. Nothing for wrapped memory.
   */
  useOn(stream: CudaStream): void {
    this.owner?.useOn(stream);
  }

  /**
   * A contiguous host copy, once the work enqueued on `stream` so far is done; the event loop
   * keeps running until then.
   */
  async toHost(stream: CudaStream = this.cudaDevice.defaultStream): Promise<HostTensor> {
    this.assertAlive();
    await stream.wait();
    return this.toHostSync(stream);
  }

  /** Blocks until the work enqueued on `stream` is done, then copies as toHost() does. */
  toHostSync(stream: CudaStream = this.cudaDevice.defaultStream): HostTensor {
    const storage = this.storage();
    if (this.numel === 0) return HostTensor.zeros(this.dtype, this.shape);
    const data = allocateHostArray(this.dtype, storage.bytes / bytesPerElement(this.dtype));
    copyDeviceToHostSync(data, storage, stream);
    if (this.isContiguous()) return new HostTensor(this.dtype, data, this.shape);
    return new HostTensor(this.dtype, data, this.shape, this.strides, 0).contiguous();
  }

  /**
   * Enqueues filling the storage the view spans (gaps of a strided view included) with one
   * 16-bit pattern; bf16 and fp16 only.
   */
  fill16(bits: number, stream?: CudaStream): void {
    if (this.dtype !== 'bf16' && this.dtype !== 'fp16') {
      throw new DtypeError('tensor', 'bf16 or fp16 for fill16', this.dtype);
    }
    fill(this.storage(), 16, bits, stream);
  }

  /** Enqueues filling the storage the view spans with quiet NaNs of its dtype. */
  fillNaN(stream?: CudaStream): void {
    switch (this.dtype) {
      case 'bf16':
      case 'fp16':
        fill(this.storage(), 16, NAN_BITS[this.dtype], stream);
        return;
      case 'float32':
        fill(this.storage(), 32, NAN_BITS.float32, stream);
        return;
      case 'int32':
        throw new DtypeError('tensor', 'a floating-point dtype for fillNaN', this.dtype);
    }
  }

  /**
   * Frees the memory if this tensor owns it, in stream order: after the work enqueued so far
   * that uses it (idempotent). Any later use throws DisposedError.
   */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.owner?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private assertAlive(): void {
    if (this.isDisposed) {
      throw new DisposedError(
        `a ${this.dtype} device tensor of shape ${formatShape(this.shape)} on cuda:${this.cudaDevice.ordinal} was disposed`,
      );
    }
  }
}

/**
 * Uploads `host` keeping its layout: its whole backing array up to the view's last element is
 * copied, and the device tensor keeps the host view's strides and offset. Tests use it to build
 * padded-stride device tensors.
 */
export function uploadHostTensorPreservingLayout(
  device: CudaDevice,
  host: HostTensor,
  stream?: CudaStream,
): DeviceTensor {
  const elementBytes = bytesPerElement(host.dtype);
  const endElement = host.offset + storageSpan(host.shape, host.strides);
  const buffer = DeviceBuffer.alloc(device, endElement * elementBytes, stream);
  try {
    copyHostToDevice(buffer, host.data.subarray(0, endElement), stream);
    return DeviceTensor.adopt(
      buffer,
      host.dtype,
      host.shape,
      host.strides,
      host.offset * elementBytes,
    );
  } catch (error) {
    buffer.dispose();
    throw error;
  }
}

function checkLayout(
  shape: readonly number[],
  strides: readonly number[],
  byteOffset: number,
): void {
  if (!Array.isArray(strides) || strides.length !== shape.length) {
    throw new StrideError(
      'strides',
      `${shape.length} strides for shape ${formatShape(shape)}`,
      Array.isArray(strides) ? `${strides.length}` : String(strides),
    );
  }
  for (const stride of strides) {
    if (!Number.isSafeInteger(stride) || stride < 0) {
      throw new StrideError('strides', 'non-negative integer strides', formatShape(strides));
    }
  }
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0) {
    throw new OptionError('byteOffset', 'a non-negative integer', String(byteOffset));
  }
}
