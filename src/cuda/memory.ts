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
 *
 * Allocations are stream-ordered, from the device's memory pool (cuMemAllocFromPoolAsync and
 * cuMemFreeAsync): allocating and freeing never waits for the GPU, and memory freed on a stream
 * is reused by the next allocation once the work before the free is done. A buffer is freed on
 * the stream it was allocated on, after the work of every other stream it was used on
 * (useOn()); dispose() frees it at once in that order, and a buffer the program drops without
 * disposing is freed the same way by a finalizer.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DisposedError, LimitError, OptionError, ShapeError, StrideError } from '../errors.js';
import type { CudaDevice } from './device.js';
import { CUDA_ERROR_OUT_OF_MEMORY, type DevicePointer } from './driver.js';
import { assertSameDevice, CudaError } from './errors.js';
import { CudaEvent } from './event.js';
import { anyStreamCapturing, type CudaStream } from './stream.js';

/**
 * Why nothing is allocated on a stream while it captures a graph (the graph would own the memory
 * and allocate it again at each replay), with what to do instead: every refusal says this.
 */
export const NO_ALLOCATION_WHILE_CAPTURING =
  'nothing is allocated on a stream while it captures a graph (compute the metadata and allocate out and lse before the capture)';

/** A byte range of device memory on one device: an allocation, part of one, or foreign memory. */
export interface DeviceSpan {
  readonly device: CudaDevice;
  readonly ptr: DevicePointer;
  readonly bytes: number;
  /** The allocation the range lies in, told of every stream that uses it; absent for foreign memory. */
  readonly buffer?: DeviceBuffer | null;
}

/**
 * One pool allocation and what freeing it needs. It is kept apart from its DeviceBuffer so that
 * the finalizer, which runs once the buffer is unreachable, still has it.
 */
class Allocation {
  readonly device: CudaDevice;
  readonly ptr: DevicePointer;
  readonly bytes: number;
  /** The stream it was allocated on: it is freed there. */
  readonly stream: CudaStream;
  /** Other streams that used it: its free waits for their work too. */
  private otherStreams: CudaStream[] | null = null;
  private freed = false;

  constructor(device: CudaDevice, ptr: DevicePointer, bytes: number, stream: CudaStream) {
    this.device = device;
    this.ptr = ptr;
    this.bytes = bytes;
    this.stream = stream;
  }

  useOn(stream: CudaStream): void {
    if (stream === this.stream || this.otherStreams?.includes(stream)) return;
    assertSameDevice('stream', this.device, stream.device);
    // The allocation is ordered on its own stream only: the other stream must not touch the
    // memory before the allocation (and the free of whatever used it before) is done. A wait
    // across a graph capture's boundary is not allowed; memory a capture uses was allocated
    // before it began, and the graph runs later still.
    if (this.stream.disposed) this.device.synchronize();
    else if (!stream.capturing && !this.stream.capturing) waitForStream(stream, this.stream);
    this.otherStreams ??= [];
    this.otherStreams.push(stream);
  }

  /**
   * Enqueues the free. While a stream involved is capturing a graph the free would be recorded
   * instead of run, so it waits (freeDeferredAllocations) until the capture ends. Nothing is
   * left to free once the device is disposed (its context is gone) or lost.
   */
  free(): void {
    if (this.freed) return;
    if (this.device.disposed || this.device.poisoned) {
      this.freed = true;
      liveBytes -= this.bytes;
      return;
    }
    const others = this.otherStreams;
    let gone = this.stream.disposed;
    let capturing = this.stream.capturing;
    if (others !== null) {
      for (const other of others) {
        gone ||= other.disposed;
        capturing ||= other.capturing;
      }
    }
    if (capturing || (gone && anyStreamCapturing())) {
      deferredFrees.add(this);
      return;
    }
    this.freed = true;
    if (deferredFrees.size > 0) deferredFrees.delete(this);
    liveBytes -= this.bytes;
    let on = this.stream;
    if (gone) {
      // A destroyed stream can no longer be waited for in order: wait for the whole device.
      this.device.synchronize();
      on = this.device.defaultStream;
    } else if (others !== null) {
      for (const other of others) waitForStream(on, other);
    }
    const streamHandle = on.handle;
    const ptr = this.ptr;
    this.device.release('cuMemFreeAsync', (cu) => cu.cuMemFreeAsync(ptr, streamHandle));
  }
}

/** Frees that waited for a graph capture to end. */
const deferredFrees = new Set<Allocation>();

/** Enqueues the frees that waited for a capture, where no stream they involve still captures. */
export function freeDeferredAllocations(): void {
  for (const allocation of [...deferredFrees]) allocation.free();
}

/** Makes work enqueued on `waiter` from now on wait for the work enqueued on `waited` so far. */
function waitForStream(waiter: CudaStream, waited: CudaStream): void {
  const event = CudaEvent.create(waiter.device, { timing: false });
  try {
    event.record(waited);
    waiter.waitFor(event);
  } finally {
    event.dispose();
  }
}

/**
 * Frees the allocation of a buffer the program dropped without dispose(). A finalizer must not
 * throw (the process would exit), so a failure becomes a warning.
 */
const finalizer = new FinalizationRegistry<Allocation>((allocation) => {
  try {
    allocation.free();
  } catch (error) {
    process.emitWarning(
      `flashmla: freeing ${allocation.bytes} bytes of a dropped device buffer failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
});

/**
 * V8 collects by JavaScript heap growth, and a dropped buffer is a few hundred bytes of heap
 * that hold megabytes of device memory: a loop that never disposes could fill the GPU long
 * before a collection finds its garbage. So each time 1/GC_PRESSURE_DIVISOR of a device's
 * memory has been allocated and not disposed, a full collection runs; the finalizers of what it
 * found then free in stream order as soon as the event loop turns.
 */
const GC_PRESSURE_DIVISOR = 64;
let undisposedSinceCollection = 0;
/** Bytes allocated and not yet freed, for the message of an out-of-memory error. */
let liveBytes = 0;
let collectGarbage: (() => void) | null | undefined;

function noteUndisposed(device: CudaDevice, bytes: number): void {
  undisposedSinceCollection += bytes;
  if (undisposedSinceCollection < device.totalMemoryBytes / GC_PRESSURE_DIVISOR) return;
  undisposedSinceCollection = 0;
  collectGarbage ??= findGarbageCollector();
  collectGarbage?.();
}

/** V8's gc(): the global one under --expose-gc, else one exposed now (flags set late reach new contexts only). */
function findGarbageCollector(): (() => void) | null {
  const global = (globalThis as { gc?: () => void }).gc;
  if (typeof global === 'function') return global;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

/** The out-parameter of cuMemAllocFromPoolAsync, reused: the allocation path allocates no arrays. */
const allocatedPointer = new BigUint64Array(1);

/** A pool allocation (256-byte aligned), freed in stream order by dispose() or, once dropped, by a finalizer. */
export class DeviceBuffer implements DeviceSpan {
  readonly device: CudaDevice;
  readonly bytes: number;
  /** null for a zero-byte buffer, which owns no memory. */
  private readonly allocation: Allocation | null;
  private isDisposed = false;

  private constructor(device: CudaDevice, allocation: Allocation | null, bytes: number) {
    this.device = device;
    this.allocation = allocation;
    this.bytes = bytes;
  }

  /**
   * Allocates `bytes` of uninitialized device memory, ordered on `stream` (default: the device's
   * default stream): work on that stream may use it at once, work on another stream once the
   * buffer is told with useOn(). A zero-byte buffer has ptr 0n.
   */
  static alloc(device: CudaDevice, bytes: number, stream?: CudaStream): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new LimitError('bytes', 'a non-negative integer byte count', String(bytes));
    }
    if (bytes === 0) {
      device.assertUsable('cuMemAllocFromPoolAsync');
      return new DeviceBuffer(device, null, 0);
    }
    const on = streamFor(device, stream);
    if (on.capturing) {
      throw new OptionError(
        'stream',
        `a stream that is not capturing a graph: ${NO_ALLOCATION_WHILE_CAPTURING}`,
        `an allocation of ${bytes} bytes on the capturing stream`,
      );
    }
    const pointer = allocatedPointer;
    const streamHandle = on.handle;
    const pool = device.memoryPool;
    try {
      device.call('cuMemAllocFromPoolAsync', (cu) =>
        cu.cuMemAllocFromPoolAsync(pointer, bytes, pool, streamHandle),
      );
    } catch (error) {
      if (!(error instanceof CudaError) || error.result !== CUDA_ERROR_OUT_OF_MEMORY) throw error;
      throw new CudaError(
        error,
        `${error.message} (allocating ${bytes} bytes on cuda:${device.ordinal}, where ${liveBytes} bytes are allocated and not yet freed: dispose() tensors you are done with, or let the event loop run so that dropped ones are freed)`,
      );
    }
    const allocation = new Allocation(device, pointer[0], bytes, on);
    liveBytes += bytes;
    const buffer = new DeviceBuffer(device, allocation, bytes);
    finalizer.register(buffer, allocation, allocation);
    noteUndisposed(device, bytes);
    return buffer;
  }

  get ptr(): DevicePointer {
    if (this.isDisposed) {
      throw new DisposedError(
        `a device buffer of ${this.bytes} bytes on cuda:${this.device.ordinal} was disposed`,
      );
    }
    return this.allocation?.ptr ?? 0n;
  }

  /** The buffer is its own allocation (DeviceSpan). */
  get buffer(): DeviceBuffer {
    return this;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * Declares that work enqueued on `stream` from now on uses this memory: the stream first
   * waits for the allocation, and the free will wait for the stream's work. Copies, fills and
   * the decode calls do this for the buffers they are given.
   */
  useOn(stream: CudaStream): void {
    if (!this.isDisposed) this.allocation?.useOn(stream);
  }

  /** Frees the memory in stream order, after the work enqueued so far that uses it (idempotent). */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    if (this.allocation === null) return;
    finalizer.unregister(this.allocation);
    undisposedSinceCollection = Math.max(0, undisposedSinceCollection - this.bytes);
    this.allocation.free();
  }

  [Symbol.dispose](): void {
    this.dispose();
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
  return { device: span.device, ptr: span.ptr + BigInt(byteOffset), bytes, buffer: span.buffer };
}

/** Enqueues a copy of all of `src` to the start of `dst`. */
export function copyHostToDevice(dst: DeviceSpan, src: ArrayBufferView, stream?: CudaStream): void {
  const on = streamFor(dst.device, stream);
  checkFits('src', src.byteLength, 'dst', dst.bytes);
  if (src.byteLength === 0) return;
  dst.buffer?.useOn(on);
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
  src.buffer?.useOn(on);
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
  dst.buffer?.useOn(on);
  src.buffer?.useOn(on);
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
  dst.buffer?.useOn(on);
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
