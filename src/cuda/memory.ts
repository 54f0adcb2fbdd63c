/**
 * Device memory: allocation, and copies and fills over byte ranges of it.
 *
 * Every copy and fill is enqueued on a stream (the device's default stream unless one is given)
 * and returns at once; its `...Sync` twin also waits for the stream. Host memory here is ordinary
 * (pageable) JavaScript memory, for which the driver makes cuMemcpy*Async effectively
 * synchronous: a host-to-device copy returns once the driver has staged the bytes, a
 * device-to-host copy once they have arrived (after the work before it on the stream). That is
 * acceptable for this library, whose hot path never copies to or from the host; the stream still
 * keeps each host view referenced until the copy is known to be done, so nothing depends on it.
 */

import { DisposedError, LimitError, OptionError, ShapeError, StrideError } from '../errors.js';
import type { CudaDevice } from './device.js';
import type { DevicePointer } from './driver.js';
import { assertSameDevice } from './errors.js';
import type { CudaStream } from './stream.js';

/** A byte range of device memory on one device: an allocation, part of one, or foreign memory. */
export interface DeviceSpan {
  readonly device: CudaDevice;
  readonly ptr: DevicePointer;
  readonly bytes: number;
}

/** An allocation made with cuMemAlloc (256-byte aligned), freed by dispose(). */
export class DeviceBuffer implements DeviceSpan {
  readonly device: CudaDevice;
  readonly bytes: number;
  private readonly address: DevicePointer;
  private isDisposed = false;

  private constructor(device: CudaDevice, address: DevicePointer, bytes: number) {
    this.device = device;
    this.address = address;
    this.bytes = bytes;
  }

  /** Allocates `bytes` of uninitialized device memory (a zero-byte buffer has ptr 0n). */
  static alloc(device: CudaDevice, bytes: number): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new LimitError('bytes', 'a non-negative integer byte count', String(bytes));
    }
    if (bytes === 0) {
      device.assertUsable('cuMemAlloc_v2');
      return new DeviceBuffer(device, 0n, 0);
    }
    const pointer = new BigUint64Array(1);
    device.call('cuMemAlloc_v2', (cu) => cu.cuMemAlloc_v2(pointer, bytes));
    return new DeviceBuffer(device, pointer[0], bytes);
  }

  get ptr(): DevicePointer {
    if (this.isDisposed) {
      throw new DisposedError(
        `a device buffer of ${this.bytes} bytes on cuda:${this.device.ordinal} was disposed`,
      );
    }
    return this.address;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Frees the memory (idempotent). Work still enqueued that uses it must be waited for first. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    if (this.address !== 0n) {
      this.device.release('cuMemFree_v2', (cu) => cu.cuMemFree_v2(this.address));
    }
  }
}

/** The `bytes` bytes of `span` starting `byteOffset` bytes in. */
export function subspan(span: DeviceSpan, byteOffset: number, bytes: number): DeviceSpan {
  if (
    !Number.isSafeInteger(byteOffset) ||
    byteOffset < 0 ||
    !Number.isSafeInteger(bytes) ||
    bytes < 0
  ) {
    throw new LimitError(
      'subspan',
      'a non-negative integer offset and length',
      `${byteOffset} + ${bytes}`,
    );
  }
  if (byteOffset + bytes > span.bytes) {
    throw new ShapeError(
      'subspan',
      `a range inside ${span.bytes} bytes`,
      `bytes [${byteOffset}, ${byteOffset + bytes})`,
    );
  }
  return { device: span.device, ptr: span.ptr + BigInt(byteOffset), bytes };
}

/** Enqueues a copy of all of `src` to the start of `dst`. */
export function copyHostToDevice(dst: DeviceSpan, src: ArrayBufferView, stream?: CudaStream): void {
  const on = streamFor(dst.device, stream);
  checkFits('src', src.byteLength, 'dst', dst.bytes);
  if (src.byteLength === 0) return;
  const bytes = bytesOf(src);
  const dstPointer = dst.ptr;
  const streamHandle = on.handle;
  dst.device.call('cuMemcpyHtoDAsync_v2', (cu) =>
    cu.cuMemcpyHtoDAsync_v2(dstPointer, bytes, bytes.byteLength, streamHandle),
  );
  on.keepAlive(src);
}

export function copyHostToDeviceSync(
  dst: DeviceSpan,
  src: ArrayBufferView,
  stream?: CudaStream,
): void {
  copyHostToDevice(dst, src, stream);
  streamFor(dst.device, stream).synchronize();
}

/** Enqueues a copy of the first `dst.byteLength` bytes of `src` into `dst`. */
export function copyDeviceToHost(dst: ArrayBufferView, src: DeviceSpan, stream?: CudaStream): void {
  const on = streamFor(src.device, stream);
  checkFits('dst', dst.byteLength, 'src', src.bytes);
  if (dst.byteLength === 0) return;
  const bytes = bytesOf(dst);
  const srcPointer = src.ptr;
  const streamHandle = on.handle;
  src.device.call('cuMemcpyDtoHAsync_v2', (cu) =>
    cu.cuMemcpyDtoHAsync_v2(bytes, srcPointer, bytes.byteLength, streamHandle),
  );
  on.keepAlive(dst);
}

export function copyDeviceToHostSync(
  dst: ArrayBufferView,
  src: DeviceSpan,
  stream?: CudaStream,
): void {
  copyDeviceToHost(dst, src, stream);
  streamFor(src.device, stream).synchronize();
}

/** Enqueues a copy of all of `src` to the start of `dst` (same device). */
export function copyDeviceToDevice(dst: DeviceSpan, src: DeviceSpan, stream?: CudaStream): void {
  assertSameDevice('src', dst.device, src.device);
  const on = streamFor(dst.device, stream);
  checkFits('src', src.bytes, 'dst', dst.bytes);
  if (src.bytes === 0) return;
  const dstPointer = dst.ptr;
  const srcPointer = src.ptr;
  const streamHandle = on.handle;
  dst.device.call('cuMemcpyDtoDAsync_v2', (cu) =>
    cu.cuMemcpyDtoDAsync_v2(dstPointer, srcPointer, src.bytes, streamHandle),
  );
}

export function copyDeviceToDeviceSync(
  dst: DeviceSpan,
  src: DeviceSpan,
  stream?: CudaStream,
): void {
  copyDeviceToDevice(dst, src, stream);
  streamFor(dst.device, stream).synchronize();
}

/** Width in bits of the pattern a fill repeats. */
export type FillWidth = 8 | 16 | 32;

/**
 * Enqueues filling all of `dst` with a repeated 8-, 16- or 32-bit pattern (cuMemsetD8/16/32);
 * `value` is the pattern's bits as an unsigned integer, e.g. 0x7fc0 for a bf16 NaN.
 */
export function fill(dst: DeviceSpan, width: FillWidth, value: number, stream?: CudaStream): void {
  const on = streamFor(dst.device, stream);
  const elementBytes = width / 8;
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** width) {
    throw new OptionError('value', `an unsigned ${width}-bit integer`, String(value));
  }
  if (dst.bytes % elementBytes !== 0) {
    throw new ShapeError(
      'dst',
      `a multiple of ${elementBytes} bytes for a ${width}-bit fill`,
      `${dst.bytes} bytes`,
    );
  }
  if (dst.bytes === 0) return;
  const pointer = dst.ptr;
  if (pointer % BigInt(elementBytes) !== 0n) {
    throw new StrideError(
      'dst',
      `an address aligned to ${elementBytes} bytes`,
      `0x${pointer.toString(16)}`,
    );
  }
  const count = dst.bytes / elementBytes;
  const streamHandle = on.handle;
  switch (width) {
    case 8:
      dst.device.call('cuMemsetD8Async', (cu) =>
        cu.cuMemsetD8Async(pointer, value, count, streamHandle),
      );
      break;
    case 16:
      dst.device.call('cuMemsetD16Async', (cu) =>
        cu.cuMemsetD16Async(pointer, value, count, streamHandle),
      );
      break;
    case 32:
      dst.device.call('cuMemsetD32Async', (cu) =>
        cu.cuMemsetD32Async(pointer, value, count, streamHandle),
      );
      break;
  }
}

export function fillSync(
  dst: DeviceSpan,
  width: FillWidth,
  value: number,
  stream?: CudaStream,
): void {
  fill(dst, width, value, stream);
  streamFor(dst.device, stream).synchronize();
}

function streamFor(device: CudaDevice, stream: CudaStream | undefined): CudaStream {
  if (stream === undefined) return device.defaultStream;
  assertSameDevice('stream', device, stream.device);
  return stream;
}

function checkFits(argument: string, bytes: number, into: string, capacity: number): void {
  if (bytes > capacity) {
    throw new ShapeError(
      argument,
      `at most ${capacity} bytes (the size of ${into})`,
      `${bytes} bytes`,
    );
  }
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array
    ? view
    : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}
