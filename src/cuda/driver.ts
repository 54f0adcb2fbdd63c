/**
 * The CUDA driver API (libcuda.so.1) bound through koffi: the only module that touches koffi.
 *
 * The binding is thin on purpose: one typed function per driver entry point, under the exact
 * versioned symbol that cuda.h (CUDA 13.0) maps its name to, taking and returning what the C
 * function does. Out-parameters are typed arrays the caller owns (koffi passes their storage in
 * place): Int32Array(1) for int, BigUint64Array(1) for handles, device pointers and size_t,
 * Float32Array(1) for float. Handles and device pointers are bigints; 0n is NULL.
 *
 * Nothing here runs at import time: koffi and libcuda are loaded by the first loadDriver() call,
 * so a machine without a GPU can import the whole library. Calls are synchronous on purpose: a
 * koffi `.async` call runs on a pool thread where no CUDA context is current.
 */

import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { GpuUnavailableError } from '../errors.js';
import { CudaError, type CudaFailure } from './errors.js';

type Koffi = typeof import('koffi');

/** An opaque driver handle (CUcontext, CUstream, CUevent, CUmodule, CUfunction, CUgraph...). */
export type Handle = bigint;
/** A CUdeviceptr: a 64-bit device address. */
export type DevicePointer = bigint;
/** The address of host memory the driver reads in place (a NativeBlock's); 0n is NULL. */
export type HostAddress = bigint;

/** The driver functions we call, each with its C prototype's argument order. */
export interface CudaDriver {
  cuInit(flags: number): number;
  cuDriverGetVersion(version: Int32Array): number;
  cuGetErrorName(result: number, name: BigUint64Array): number;
  cuGetErrorString(result: number, message: BigUint64Array): number;

  cuDeviceGetCount(count: Int32Array): number;
  cuDeviceGet(device: Int32Array, ordinal: number): number;
  cuDeviceGetName(name: Uint8Array, length: number, device: number): number;
  cuDeviceGetAttribute(value: Int32Array, attribute: number, device: number): number;
  cuDeviceTotalMem_v2(bytes: BigUint64Array, device: number): number;

  cuDevicePrimaryCtxRetain(context: BigUint64Array, device: number): number;
  cuDevicePrimaryCtxRelease_v2(device: number): number;
  cuCtxSetCurrent(context: Handle): number;
  cuCtxSynchronize(): number;
  cuMemGetInfo_v2(free: BigUint64Array, total: BigUint64Array): number;

  cuDeviceGetDefaultMemPool(pool: BigUint64Array, device: number): number;
  cuMemPoolGetAttribute(pool: Handle, attribute: number, value: BigUint64Array): number;
  cuMemPoolSetAttribute(pool: Handle, attribute: number, value: BigUint64Array): number;
  cuMemPoolTrimTo(pool: Handle, minBytesToKeep: number): number;
  cuMemAllocFromPoolAsync(
    pointer: BigUint64Array,
    bytes: number,
    pool: Handle,
    stream: Handle,
  ): number;
  cuMemFreeAsync(pointer: DevicePointer, stream: Handle): number;
  cuMemcpyHtoDAsync_v2(dst: DevicePointer, src: Uint8Array, bytes: number, stream: Handle): number;
  cuMemcpyDtoHAsync_v2(dst: Uint8Array, src: DevicePointer, bytes: number, stream: Handle): number;
  cuMemcpyDtoDAsync_v2(
    dst: DevicePointer,
    src: DevicePointer,
    bytes: number,
    stream: Handle,
  ): number;
  cuMemsetD8Async(dst: DevicePointer, value: number, count: number, stream: Handle): number;
  cuMemsetD16Async(dst: DevicePointer, value: number, count: number, stream: Handle): number;
  cuMemsetD32Async(dst: DevicePointer, value: number, count: number, stream: Handle): number;

  cuStreamCreate(stream: BigUint64Array, flags: number): number;
  cuStreamDestroy_v2(stream: Handle): number;
  cuStreamSynchronize(stream: Handle): number;
  cuStreamQuery(stream: Handle): number;
  cuStreamWaitEvent(stream: Handle, event: Handle, flags: number): number;

  cuEventCreate(event: BigUint64Array, flags: number): number;
  cuEventDestroy_v2(event: Handle): number;
  cuEventRecord(event: Handle, stream: Handle): number;
  cuEventSynchronize(event: Handle): number;
  cuEventQuery(event: Handle): number;
  cuEventElapsedTime_v2(milliseconds: Float32Array, start: Handle, end: Handle): number;

  cuModuleLoadData(module: BigUint64Array, image: Uint8Array): number;
  cuModuleUnload(module: Handle): number;
  cuModuleGetFunction(func: BigUint64Array, module: Handle, name: string): number;
  cuFuncSetAttribute(func: Handle, attribute: number, value: number): number;
  cuFuncGetAttribute(value: Int32Array, attribute: number, func: Handle): number;
  cuLaunchKernel(
    func: Handle,
    gridX: number,
    gridY: number,
    gridZ: number,
    blockX: number,
    blockY: number,
    blockZ: number,
    sharedBytes: number,
    stream: Handle,
    kernelParams: HostAddress,
    extra: null,
  ): number;
  cuLaunchKernelEx(
    config: HostAddress,
    func: Handle,
    kernelParams: HostAddress,
    extra: null,
  ): number;
  cuTensorMapEncodeTiled(
    tensorMap: bigint,
    dataType: number,
    rank: number,
    globalAddress: DevicePointer,
    globalDims: BigUint64Array,
    globalStridesBytes: BigUint64Array,
    boxDims: Uint32Array,
    elementStrides: Uint32Array,
    interleave: number,
    swizzle: number,
    l2Promotion: number,
    oobFill: number,
  ): number;

  cuStreamBeginCapture_v2(stream: Handle, mode: number): number;
  cuStreamEndCapture(stream: Handle, graph: BigUint64Array): number;
  cuGraphInstantiateWithFlags(exec: BigUint64Array, graph: Handle, flags: bigint): number;
  cuGraphLaunch(exec: Handle, stream: Handle): number;
  cuGraphExecDestroy(exec: Handle): number;
  cuGraphDestroy(graph: Handle): number;
}

/*
 * C prototypes as koffi parses them. Enums are passed as int (same registers as the unsigned
 * enum type on x86-64 and arm64), handles as void *, out-parameters as void * so that koffi hands
 * the typed array's storage to the driver unchanged. Symbol names follow cuda.h's #defines:
 * cuMemAlloc -> cuMemAlloc_v2, cuEventElapsedTime -> cuEventElapsedTime_v2,
 * cuStreamBeginCapture -> cuStreamBeginCapture_v2, cuGraphInstantiate -> cuGraphInstantiateWithFlags...
 */
const PROTOTYPES: Record<keyof CudaDriver, string> = {
  cuInit: 'int cuInit(uint32_t flags)',
  cuDriverGetVersion: 'int cuDriverGetVersion(void *version)',
  cuGetErrorName: 'int cuGetErrorName(int result, void *name)',
  cuGetErrorString: 'int cuGetErrorString(int result, void *message)',

  cuDeviceGetCount: 'int cuDeviceGetCount(void *count)',
  cuDeviceGet: 'int cuDeviceGet(void *device, int ordinal)',
  cuDeviceGetName: 'int cuDeviceGetName(void *name, int length, int device)',
  cuDeviceGetAttribute: 'int cuDeviceGetAttribute(void *value, int attribute, int device)',
  cuDeviceTotalMem_v2: 'int cuDeviceTotalMem_v2(void *bytes, int device)',

  cuDevicePrimaryCtxRetain: 'int cuDevicePrimaryCtxRetain(void *context, int device)',
  cuDevicePrimaryCtxRelease_v2: 'int cuDevicePrimaryCtxRelease_v2(int device)',
  cuCtxSetCurrent: 'int cuCtxSetCurrent(void *context)',
  cuCtxSynchronize: 'int cuCtxSynchronize()',
  cuMemGetInfo_v2: 'int cuMemGetInfo_v2(void *free, void *total)',

  cuDeviceGetDefaultMemPool: 'int cuDeviceGetDefaultMemPool(void *pool, int device)',
  cuMemPoolGetAttribute: 'int cuMemPoolGetAttribute(void *pool, int attribute, void *value)',
  cuMemPoolSetAttribute: 'int cuMemPoolSetAttribute(void *pool, int attribute, void *value)',
  cuMemPoolTrimTo: 'int cuMemPoolTrimTo(void *pool, size_t minBytesToKeep)',
  cuMemAllocFromPoolAsync:
    'int cuMemAllocFromPoolAsync(void *pointer, size_t bytes, void *pool, void *stream)',
  cuMemFreeAsync: 'int cuMemFreeAsync(uint64_t pointer, void *stream)',
  cuMemcpyHtoDAsync_v2:
    'int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)',
  cuMemcpyDtoHAsync_v2:
    'int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t bytes, void *stream)',
  cuMemcpyDtoDAsync_v2:
    'int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void *stream)',
  cuMemsetD8Async: 'int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t count, void *stream)',
  cuMemsetD16Async:
    'int cuMemsetD16Async(uint64_t dst, uint16_t value, size_t count, void *stream)',
  cuMemsetD32Async:
    'int cuMemsetD32Async(uint64_t dst, uint32_t value, size_t count, void *stream)',

  cuStreamCreate: 'int cuStreamCreate(void *stream, uint32_t flags)',
  cuStreamDestroy_v2: 'int cuStreamDestroy_v2(void *stream)',
  cuStreamSynchronize: 'int cuStreamSynchronize(void *stream)',
  cuStreamQuery: 'int cuStreamQuery(void *stream)',
  cuStreamWaitEvent: 'int cuStreamWaitEvent(void *stream, void *event, uint32_t flags)',

  cuEventCreate: 'int cuEventCreate(void *event, uint32_t flags)',
  cuEventDestroy_v2: 'int cuEventDestroy_v2(void *event)',
  cuEventRecord: 'int cuEventRecord(void *event, void *stream)',
  cuEventSynchronize: 'int cuEventSynchronize(void *event)',
  cuEventQuery: 'int cuEventQuery(void *event)',
  cuEventElapsedTime_v2: 'int cuEventElapsedTime_v2(void *milliseconds, void *start, void *end)',

  cuModuleLoadData: 'int cuModuleLoadData(void *module, const void *image)',
  cuModuleUnload: 'int cuModuleUnload(void *module)',
  cuModuleGetFunction: 'int cuModuleGetFunction(void *func, void *module, const char *name)',
  cuFuncSetAttribute: 'int cuFuncSetAttribute(void *func, int attribute, int value)',
  cuFuncGetAttribute: 'int cuFuncGetAttribute(void *value, int attribute, void *func)',
  cuLaunchKernel:
    'int cuLaunchKernel(void *func, uint32_t gridX, uint32_t gridY, uint32_t gridZ, ' +
    'uint32_t blockX, uint32_t blockY, uint32_t blockZ, uint32_t sharedBytes, void *stream, ' +
    'void **kernelParams, void **extra)',
  cuLaunchKernelEx:
    'int cuLaunchKernelEx(const void *config, void *func, void **kernelParams, void **extra)',
  cuTensorMapEncodeTiled:
    'int cuTensorMapEncodeTiled(void *tensorMap, int dataType, uint32_t rank, void *globalAddress, ' +
    'const void *globalDims, const void *globalStrides, const void *boxDims, ' +
    'const void *elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill)',

  cuStreamBeginCapture_v2: 'int cuStreamBeginCapture_v2(void *stream, int mode)',
  cuStreamEndCapture: 'int cuStreamEndCapture(void *stream, void *graph)',
  cuGraphInstantiateWithFlags:
    'int cuGraphInstantiateWithFlags(void *exec, void *graph, uint64_t flags)',
  cuGraphLaunch: 'int cuGraphLaunch(void *exec, void *stream)',
  cuGraphExecDestroy: 'int cuGraphExecDestroy(void *exec)',
  cuGraphDestroy: 'int cuGraphDestroy(void *graph)',
};

export const CUDA_SUCCESS = 0;
export const CUDA_ERROR_OUT_OF_MEMORY = 2;
export const CUDA_ERROR_NOT_READY = 600;

/** CUdevice_attribute values used here (cuda.h, CUDA 13.0). */
export const DeviceAttribute = {
  CLOCK_RATE: 13,
  MULTIPROCESSOR_COUNT: 16,
  L2_CACHE_SIZE: 38,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
  MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: 81,
  MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
  MEMORY_POOLS_SUPPORTED: 115,
} as const;

/** CUmemPool_attribute values (the byte counts are cuuint64_t). */
export const MemPoolAttribute = {
  RELEASE_THRESHOLD: 4,
  RESERVED_MEM_CURRENT: 5,
  RESERVED_MEM_HIGH: 6,
  USED_MEM_CURRENT: 7,
  USED_MEM_HIGH: 8,
} as const;

/** CUfunction_attribute values. */
export const FunctionAttribute = {
  MAX_THREADS_PER_BLOCK: 0,
  SHARED_SIZE_BYTES: 1,
  CONST_SIZE_BYTES: 2,
  LOCAL_SIZE_BYTES: 3,
  NUM_REGS: 4,
  PTX_VERSION: 5,
  BINARY_VERSION: 6,
  MAX_DYNAMIC_SHARED_SIZE_BYTES: 8,
} as const;

/** CUstream_flags. */
export const CU_STREAM_DEFAULT = 0x0;
export const CU_STREAM_NON_BLOCKING = 0x1;
/** CUevent_flags. */
export const CU_EVENT_DEFAULT = 0x0;
export const CU_EVENT_DISABLE_TIMING = 0x2;
/** CUstreamCaptureMode. */
export const CU_STREAM_CAPTURE_MODE_GLOBAL = 0;
export const CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
/** CUlaunchAttributeID. */
export const CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;

/** The oldest driver the sm_90a cubins (built by nvcc 13.0) load on: CUDA 13.0. */
export const REQUIRED_DRIVER_VERSION = 13000;
const DRIVER_FIX = 'install the NVIDIA driver R580 or newer (CUDA 13.0 or newer)';

let loaded: { driver: CudaDriver; koffi: Koffi } | GpuUnavailableError | undefined;
let initialized = false;

/**
 * Binds libcuda.so.1 on first use (and only on the main thread: a worker would load a second
 * koffi instance and share the process's CUDA state behind our back). Throws
 * GpuUnavailableError, saying which step failed, when koffi or the driver is missing.
 */
export function loadDriver(): CudaDriver {
  return loadBinding().driver;
}

/** loadDriver() plus cuInit(0), once per process. */
export function initDriver(): CudaDriver {
  const driver = loadDriver();
  if (!initialized) {
    check(driver.cuInit(0), 'cuInit');
    initialized = true;
  }
  return driver;
}

function loadBinding(): { driver: CudaDriver; koffi: Koffi } {
  loaded ??= bindDriver();
  if (loaded instanceof GpuUnavailableError) throw loaded;
  return loaded;
}

function bindDriver(): { driver: CudaDriver; koffi: Koffi } | GpuUnavailableError {
  if (!isMainThread) {
    return new GpuUnavailableError(
      'the CUDA driver is used from the main thread only, and this is a worker thread',
      'call the CUDA backend from the main thread',
    );
  }
  if (process.platform !== 'linux') {
    return new GpuUnavailableError(
      `the CUDA backend runs on Linux, not ${process.platform}`,
      'use a Linux machine with a Hopper GPU',
    );
  }
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (error) {
    return new GpuUnavailableError(
      `the koffi package could not be loaded (${messageOf(error)})`,
      'reinstall the dependencies with npm install (koffi ships prebuilt binaries for Linux x64 and arm64)',
    );
  }
  let library: ReturnType<Koffi['load']>;
  try {
    library = koffi.load('libcuda.so.1');
  } catch (error) {
    return new GpuUnavailableError(
      `libcuda.so.1 could not be loaded (${messageOf(error)})`,
      DRIVER_FIX,
    );
  }
  const bound: Partial<Record<keyof CudaDriver, unknown>> = {};
  for (const [name, prototype] of Object.entries(PROTOTYPES) as [keyof CudaDriver, string][]) {
    try {
      bound[name] = library.func(prototype);
    } catch (error) {
      return new GpuUnavailableError(
        `libcuda.so.1${driverVersionNote(bound)} lacks ${name} (${messageOf(error)})`,
        DRIVER_FIX,
      );
    }
  }
  return { driver: bound as unknown as CudaDriver, koffi };
}

function driverVersionNote(bound: Partial<Record<keyof CudaDriver, unknown>>): string {
  const getVersion = bound.cuDriverGetVersion as CudaDriver['cuDriverGetVersion'] | undefined;
  if (getVersion === undefined) return '';
  const version = new Int32Array(1);
  return getVersion(version) === CUDA_SUCCESS ? ` (CUDA ${formatDriverVersion(version[0])})` : '';
}

/** 13000 -> '13.0', 12080 -> '12.8'. */
export function formatDriverVersion(version: number): string {
  return `${Math.floor(version / 1000)}.${Math.floor((version % 1000) / 10)}`;
}

/** The driver's name and description of a CUresult (falls back to the number if unknown). */
export function describeResult(result: number): { resultName: string; driverMessage: string } {
  const { driver, koffi } = loadBinding();
  const text = new BigUint64Array(1);
  const resultName =
    driver.cuGetErrorName(result, text) === CUDA_SUCCESS && text[0] !== 0n
      ? koffi.decode.string(text[0])
      : `CUDA_ERROR_${result}`;
  text[0] = 0n;
  const driverMessage =
    driver.cuGetErrorString(result, text) === CUDA_SUCCESS && text[0] !== 0n
      ? koffi.decode.string(text[0])
      : 'unknown CUDA error';
  return { resultName, driverMessage };
}

/** The CudaError for a failed call, named and described by the driver. */
export function cudaFailure(result: number, call: string): CudaFailure {
  return { result, call, ...describeResult(result) };
}

/** Throws a CudaError unless `result` is CUDA_SUCCESS. */
export function check(result: number, call: string): void {
  if (result !== CUDA_SUCCESS) throw new CudaError(cudaFailure(result, call));
}

/** Host memory that never moves, for structs the driver reads by address (see allocateNativeBlock). */
export interface NativeBlock {
  readonly address: HostAddress;
  /** The block's bytes, written in place from JavaScript. */
  readonly bytes: Uint8Array;
  readonly view: DataView;
}

/**
 * Allocates `size` bytes of zeroed native memory (8-byte aligned) with a view over them: what a
 * launch hands the driver by address (the parameter struct, the array pointing at it, the launch
 * config), written in place each time instead of being marshalled from JavaScript arrays. Free
 * it with freeNativeBlock.
 */
export function allocateNativeBlock(size: number): NativeBlock {
  const { koffi } = loadBinding();
  const address = koffi.alloc('uint64_t', Math.ceil(size / 8)) as bigint;
  const bytes = new Uint8Array(koffi.view(address, size));
  bytes.fill(0);
  return { address, bytes, view: new DataView(bytes.buffer) };
}

export function freeNativeBlock(block: NativeBlock): void {
  loadBinding().koffi.free(block.address);
}

let tensorMapScratch: bigint | undefined;

/**
 * cuTensorMapEncodeTiled writes its 128-byte CUtensorMap to an address that must be 64-byte
 * aligned, which a typed array's storage does not promise; this encodes into a reused native
 * scratch block that is, and returns a copy.
 */
export function encodeIntoAlignedTensorMap(encode: (tensorMap: bigint) => number): {
  result: number;
  tensorMap: Uint8Array;
} {
  const { koffi } = loadBinding();
  if (tensorMapScratch === undefined) {
    const block = koffi.alloc('uint8_t', 128 + 64) as bigint;
    tensorMapScratch = (block + 63n) & ~63n;
  }
  const result = encode(tensorMapScratch);
  return { result, tensorMap: new Uint8Array(koffi.view(tensorMapScratch, 128)).slice() };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
