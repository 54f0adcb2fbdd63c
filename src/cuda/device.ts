import { DisposedError, OptionError } from '../errors.js';
import {
  CUDA_ERROR_NOT_READY,
  CUDA_SUCCESS,
  type CudaDriver,
  check,
  cudaFailure,
  DeviceAttribute,
  type Handle,
  initDriver,
  loadDriver,
  MemPoolAttribute,
} from './driver.js';
import { CudaContextLostError, CudaError, type CudaFailure, isStickyCudaResult } from './errors.js';
import { CudaStream } from './stream.js';

export interface ComputeCapability {
  readonly major: number;
  readonly minor: number;
}

/** What the kernels and the scheduler need to know about a GPU; read once per device. */
export interface DeviceProperties {
  readonly ordinal: number;
  readonly name: string;
  readonly computeCapability: ComputeCapability;
  readonly multiProcessorCount: number;
  /** The most dynamic shared memory one block may opt into (cuFuncSetAttribute). */
  readonly maxSharedMemoryPerBlockOptin: number;
  readonly sharedMemoryPerMultiprocessor: number;
  readonly l2CacheBytes: number;
  readonly totalMemoryBytes: number;
  /** Typical SM clock in kHz; null where the driver does not report it. */
  readonly clockRateKHz: number | null;
  /** Whether the stream-ordered allocator (cuMemAllocAsync, memory pools) works here. */
  readonly memoryPoolsSupported: boolean;
}

/** What the device's memory pool holds, in bytes (cuMemPoolGetAttribute). */
export interface MemoryPoolUsage {
  /** Device memory the pool has reserved: in use, or freed and kept for reuse. */
  readonly reservedBytes: number;
  /** The most it has reserved since the device was opened. */
  readonly reservedHighBytes: number;
  /** Allocated from the pool and not yet freed (in stream order). */
  readonly usedBytes: number;
  readonly usedHighBytes: number;
}

/**
 * The release threshold set on the device's memory pool: UINT64_MAX, so that memory freed in
 * stream order stays in the pool for the next allocation instead of going back to the driver
 * at every synchronisation (the default, 0, would make each decode step's allocations map
 * fresh memory again).
 */
const KEEP_FREED_MEMORY = 2n ** 64n - 1n;

const CUDA_ERROR_NO_DEVICE = 100;

/** The number of CUDA devices visible to this process (0 when the driver finds none). */
export function cudaDeviceCount(): number {
  let driver: CudaDriver;
  try {
    driver = initDriver();
  } catch (error) {
    if (error instanceof CudaError && error.result === CUDA_ERROR_NO_DEVICE) return 0;
    throw error;
  }
  const count = new Int32Array(1);
  check(driver.cuDeviceGetCount(count), 'cuDeviceGetCount');
  return count[0];
}

/** The driver's CUDA version as an integer (13000 = CUDA 13.0); needs no cuInit. */
export function cudaDriverVersion(): number {
  const version = new Int32Array(1);
  check(loadDriver().cuDriverGetVersion(version), 'cuDriverGetVersion');
  return version[0];
}

/** Reads a device's properties without creating a context (cheap; the probe uses it). */
export function readDeviceProperties(ordinal: number): DeviceProperties {
  const driver = initDriver();
  const count = cudaDeviceCount();
  if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= count) {
    throw new OptionError(
      'ordinal',
      count === 0 ? 'a CUDA device, but none is visible' : `a device ordinal in [0, ${count})`,
      String(ordinal),
    );
  }
  const deviceOut = new Int32Array(1);
  check(driver.cuDeviceGet(deviceOut, ordinal), 'cuDeviceGet');
  const device = deviceOut[0];

  const nameBytes = new Uint8Array(256);
  check(driver.cuDeviceGetName(nameBytes, nameBytes.length, device), 'cuDeviceGetName');
  const nameEnd = nameBytes.indexOf(0);
  const name = new TextDecoder().decode(
    nameBytes.subarray(0, nameEnd < 0 ? nameBytes.length : nameEnd),
  );

  const value = new Int32Array(1);
  const attribute = (id: number): number => {
    check(driver.cuDeviceGetAttribute(value, id, device), 'cuDeviceGetAttribute');
    return value[0];
  };
  const totalBytes = new BigUint64Array(1);
  check(driver.cuDeviceTotalMem_v2(totalBytes, device), 'cuDeviceTotalMem_v2');
  // CUDA 13 deprecated the clock-rate attribute; keep it informational and optional.
  const clockRateKHz =
    driver.cuDeviceGetAttribute(value, DeviceAttribute.CLOCK_RATE, device) === CUDA_SUCCESS &&
    value[0] > 0
      ? value[0]
      : null;

  return {
    ordinal,
    name,
    computeCapability: {
      major: attribute(DeviceAttribute.COMPUTE_CAPABILITY_MAJOR),
      minor: attribute(DeviceAttribute.COMPUTE_CAPABILITY_MINOR),
    },
    multiProcessorCount: attribute(DeviceAttribute.MULTIPROCESSOR_COUNT),
    maxSharedMemoryPerBlockOptin: attribute(DeviceAttribute.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
    sharedMemoryPerMultiprocessor: attribute(DeviceAttribute.MAX_SHARED_MEMORY_PER_MULTIPROCESSOR),
    l2CacheBytes: attribute(DeviceAttribute.L2_CACHE_SIZE),
    totalMemoryBytes: Number(totalBytes[0]),
    clockRateKHz,
    memoryPoolsSupported: attribute(DeviceAttribute.MEMORY_POOLS_SUPPORTED) === 1,
  };
}

/**
 * The context the driver has current on this (the main) thread, as far as we set it. Only the
 * main thread calls the driver, and every call below goes through CudaDevice.makeCurrent(), so
 * remembering it saves a cuCtxSetCurrent per call. Code outside this library that switches the
 * current context on the main thread (another CUDA addon) would make this stale.
 */
let currentContext: Handle = 0n;

/**
 * One GPU, through its primary context (the one the CUDA runtime also uses, so pointers from
 * runtime-API libraries work here unchanged). open() hands out one instance per ordinal; every
 * stream, buffer, event, module and graph belongs to exactly one device, and all their driver
 * calls go through call()/query(), which make the context current, check the result, and mark
 * the device lost after a sticky error so that later calls fail at once with
 * CudaContextLostError instead of reaching a broken context.
 */
export class CudaDevice implements DeviceProperties {
  private static readonly opened = new Map<number, CudaDevice>();

  readonly ordinal: number;
  readonly name: string;
  readonly computeCapability: ComputeCapability;
  readonly multiProcessorCount: number;
  readonly maxSharedMemoryPerBlockOptin: number;
  readonly sharedMemoryPerMultiprocessor: number;
  readonly l2CacheBytes: number;
  readonly totalMemoryBytes: number;
  readonly clockRateKHz: number | null;
  readonly memoryPoolsSupported: boolean;
  /** The device's default memory pool (a CUmemoryPool): every DeviceBuffer comes from it. */
  readonly memoryPool: Handle;

  private readonly driver: CudaDriver;
  /** The CUdevice handle (cuDeviceGet), needed again to release the primary context. */
  private readonly cuDevice: number;
  private readonly context: Handle;
  private stream: CudaStream | undefined;
  private lost: CudaFailure | null = null;
  private readonly waitChecks: ((stream: CudaStream | null) => void)[] = [];
  private runningWaitChecks = false;
  private isDisposed = false;

  private constructor(
    driver: CudaDriver,
    properties: DeviceProperties,
    cuDevice: number,
    context: Handle,
    memoryPool: Handle,
  ) {
    this.driver = driver;
    this.cuDevice = cuDevice;
    this.context = context;
    this.memoryPool = memoryPool;
    this.ordinal = properties.ordinal;
    this.name = properties.name;
    this.computeCapability = properties.computeCapability;
    this.multiProcessorCount = properties.multiProcessorCount;
    this.maxSharedMemoryPerBlockOptin = properties.maxSharedMemoryPerBlockOptin;
    this.sharedMemoryPerMultiprocessor = properties.sharedMemoryPerMultiprocessor;
    this.l2CacheBytes = properties.l2CacheBytes;
    this.totalMemoryBytes = properties.totalMemoryBytes;
    this.clockRateKHz = properties.clockRateKHz;
    this.memoryPoolsSupported = properties.memoryPoolsSupported;
  }

  static count(): number {
    return cudaDeviceCount();
  }

  static driverVersion(): number {
    return cudaDriverVersion();
  }

  /** The device at `ordinal`, retaining its primary context on first use. */
  static open(ordinal = 0): CudaDevice {
    const existing = CudaDevice.opened.get(ordinal);
    if (existing !== undefined) return existing;
    const properties = readDeviceProperties(ordinal);
    const driver = initDriver();
    const deviceOut = new Int32Array(1);
    check(driver.cuDeviceGet(deviceOut, ordinal), 'cuDeviceGet');
    const contextOut = new BigUint64Array(1);
    check(driver.cuDevicePrimaryCtxRetain(contextOut, deviceOut[0]), 'cuDevicePrimaryCtxRetain');
    // The pool calls below run with the new context current, as every later call does.
    check(driver.cuCtxSetCurrent(contextOut[0]), 'cuCtxSetCurrent');
    currentContext = contextOut[0];
    const poolOut = new BigUint64Array(1);
    check(driver.cuDeviceGetDefaultMemPool(poolOut, deviceOut[0]), 'cuDeviceGetDefaultMemPool');
    const threshold = new BigUint64Array(1);
    check(
      driver.cuMemPoolGetAttribute(poolOut[0], MemPoolAttribute.RELEASE_THRESHOLD, threshold),
      'cuMemPoolGetAttribute',
    );
    if (threshold[0] < KEEP_FREED_MEMORY) {
      threshold[0] = KEEP_FREED_MEMORY;
      check(
        driver.cuMemPoolSetAttribute(poolOut[0], MemPoolAttribute.RELEASE_THRESHOLD, threshold),
        'cuMemPoolSetAttribute',
      );
    }
    const device = new CudaDevice(driver, properties, deviceOut[0], contextOut[0], poolOut[0]);
    CudaDevice.opened.set(ordinal, device);
    return device;
  }

  /**
   * The stream the library enqueues on when the caller names none: a created stream, not the
   * legacy NULL stream, so that it can be captured into a graph. It is created without
   * CU_STREAM_NON_BLOCKING, so it still orders with work other libraries put on the legacy
   * stream (a runtime-API program filling a buffer with cudaMemcpy before handing it to us).
   * Disposing it is harmless: the next use creates another.
   */
  get defaultStream(): CudaStream {
    if (this.stream === undefined || this.stream.disposed) this.stream = CudaStream.create(this);
    return this.stream;
  }

  /** True once a sticky error has made this device's context unusable. */
  get poisoned(): boolean {
    return this.lost !== null;
  }

  /** The failure that made the context unusable, if one did. */
  get lostBecause(): CudaFailure | null {
    return this.lost;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Waits for all work on every stream of this device. */
  synchronize(): void {
    this.call('cuCtxSynchronize', (cu) => cu.cuCtxSynchronize());
    this.afterWait(null);
  }

  /**
   * Registers a check to run after each wait for this device's work (its synchronize(), a
   * stream's synchronize(), wait() or idle query()): how a layer above raises, at the next
   * synchronisation, errors its kernels reported in device memory. A check learns which stream
   * was waited for (null: the whole device); it may throw, and it may wait itself (checks do not
   * run again inside a check).
   */
  addWaitCheck(check: (stream: CudaStream | null) => void): void {
    this.waitChecks.push(check);
  }

  /** Runs the registered wait checks (the CUDA layer calls this after every wait). */
  afterWait(stream: CudaStream | null): void {
    if (this.runningWaitChecks || this.waitChecks.length === 0) return;
    this.runningWaitChecks = true;
    try {
      for (const check of this.waitChecks) check(stream);
    } finally {
      this.runningWaitChecks = false;
    }
  }

  memoryInfo(): { freeBytes: number; totalBytes: number } {
    const free = new BigUint64Array(1);
    const total = new BigUint64Array(1);
    this.call('cuMemGetInfo_v2', (cu) => cu.cuMemGetInfo_v2(free, total));
    return { freeBytes: Number(free[0]), totalBytes: Number(total[0]) };
  }

  memoryPoolUsage(): MemoryPoolUsage {
    const value = new BigUint64Array(1);
    const read = (attribute: number): number => {
      this.call('cuMemPoolGetAttribute', (cu) =>
        cu.cuMemPoolGetAttribute(this.memoryPool, attribute, value),
      );
      return Number(value[0]);
    };
    return {
      reservedBytes: read(MemPoolAttribute.RESERVED_MEM_CURRENT),
      reservedHighBytes: read(MemPoolAttribute.RESERVED_MEM_HIGH),
      usedBytes: read(MemPoolAttribute.USED_MEM_CURRENT),
      usedHighBytes: read(MemPoolAttribute.USED_MEM_HIGH),
    };
  }

  /**
   * Waits for the device, gives the memory its pool keeps for reuse back to the driver,
   * destroys the default stream and releases the primary context (the driver destroys it once
   * no one else retains it). Objects created on this device become unusable; their dispose()
   * then does nothing. A later open() starts afresh.
   */
  dispose(): void {
    if (this.isDisposed) return;
    try {
      if (this.lost === null) {
        this.synchronize();
        this.call('cuMemPoolTrimTo', (cu) => cu.cuMemPoolTrimTo(this.memoryPool, 0));
      }
      this.stream?.dispose();
    } finally {
      this.isDisposed = true;
      CudaDevice.opened.delete(this.ordinal);
      if (this.lost === null) this.releaseContext();
    }
  }

  private releaseContext(): void {
    if (currentContext === this.context) {
      currentContext = 0n;
      check(this.driver.cuCtxSetCurrent(0n), 'cuCtxSetCurrent');
    }
    check(this.driver.cuDevicePrimaryCtxRelease_v2(this.cuDevice), 'cuDevicePrimaryCtxRelease_v2');
  }

  /**
   * Runs one driver call with this device's context current and throws if it fails: a
   * CudaContextLostError (and the device is marked lost) for a sticky error, a CudaError
   * otherwise. For the other modules of the CUDA layer.
   */
  call(name: string, invoke: (driver: CudaDriver) => number): void {
    const result = this.invoke(name, invoke);
    if (result !== CUDA_SUCCESS) this.fail(result, name);
  }

  /** Like call() for cuStreamQuery/cuEventQuery: true when done, false for CUDA_ERROR_NOT_READY. */
  query(name: string, invoke: (driver: CudaDriver) => number): boolean {
    const result = this.invoke(name, invoke);
    if (result === CUDA_SUCCESS) return true;
    if (result === CUDA_ERROR_NOT_READY) return false;
    return this.fail(result, name);
  }

  /**
   * For destroy/free calls: does nothing once the device is disposed (its context, and every
   * handle in it, is gone) or lost (the driver would only repeat the sticky error; the memory
   * goes with the process).
   */
  release(name: string, invoke: (driver: CudaDriver) => number): void {
    if (this.isDisposed || this.lost !== null) return;
    this.call(name, invoke);
  }

  /** Throws if this device can take no more work. */
  assertUsable(what: string): void {
    if (this.isDisposed)
      throw new DisposedError(`cuda:${this.ordinal} was disposed; ${what} was not run`);
    if (this.lost !== null) throw new CudaContextLostError(this.ordinal, this.lost, what);
  }

  private invoke(name: string, invoke: (driver: CudaDriver) => number): number {
    this.assertUsable(name);
    if (currentContext !== this.context) {
      const result = this.driver.cuCtxSetCurrent(this.context);
      if (result !== CUDA_SUCCESS) this.fail(result, 'cuCtxSetCurrent');
      currentContext = this.context;
    }
    return invoke(this.driver);
  }

  private fail(result: number, name: string): never {
    const failure = cudaFailure(result, name);
    if (isStickyCudaResult(result)) {
      this.lost = failure;
      throw new CudaContextLostError(this.ordinal, failure);
    }
    throw new CudaError(failure);
  }
}
