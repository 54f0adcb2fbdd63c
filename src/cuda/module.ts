import { DisposedError, LimitError, OptionError } from '../errors.js';
import type { CudaDevice } from './device.js';
import {
  allocateNativeBlock,
  CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
  FunctionAttribute,
  freeNativeBlock,
  type Handle,
  type HostAddress,
  type NativeBlock,
} from './driver.js';
import { assertSameDevice } from './errors.js';
import type { CudaStream } from './stream.js';

/** A loaded cubin (cuModuleLoadData). Unloading it invalidates its functions. */
export class CudaModule {
  readonly device: CudaDevice;
  private readonly moduleHandle: Handle;
  private readonly functions = new Map<string, CudaFunction>();
  private isDisposed = false;

  private constructor(device: CudaDevice, handle: Handle) {
    this.device = device;
    this.moduleHandle = handle;
  }

  /**
   * Loads a cubin (or fatbin) image into the device's context. A cubin built for another
   * architecture fails here with CUDA_ERROR_NO_BINARY_FOR_GPU or CUDA_ERROR_INVALID_IMAGE.
   */
  static load(device: CudaDevice, image: Uint8Array): CudaModule {
    if (!(image instanceof Uint8Array) || image.byteLength === 0) {
      throw new OptionError(
        'image',
        'a non-empty Uint8Array holding a cubin',
        describeValue(image),
      );
    }
    const handle = new BigUint64Array(1);
    device.call('cuModuleLoadData', (cu) => cu.cuModuleLoadData(handle, image));
    return new CudaModule(device, handle[0]);
  }

  get handle(): Handle {
    if (this.isDisposed)
      throw new DisposedError(`a CUDA module of cuda:${this.device.ordinal} was unloaded`);
    return this.moduleHandle;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** The kernel named `name` (its mangled name unless declared extern "C"). */
  getFunction(name: string): CudaFunction {
    const cached = this.functions.get(name);
    if (cached !== undefined) return cached;
    const moduleHandle = this.handle;
    const handle = new BigUint64Array(1);
    this.device.call('cuModuleGetFunction', (cu) =>
      cu.cuModuleGetFunction(handle, moduleHandle, name),
    );
    const func = new CudaFunction(this, name, handle[0]);
    this.functions.set(name, func);
    return func;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    for (const func of this.functions.values()) func.releaseLaunchBlock();
    this.functions.clear();
    this.device.release('cuModuleUnload', (cu) => cu.cuModuleUnload(this.moduleHandle));
  }
}

/** What the compiler decided for a kernel (cuFuncGetAttribute). */
export interface FunctionAttributes {
  readonly maxThreadsPerBlock: number;
  /** Static shared memory. */
  readonly sharedSizeBytes: number;
  readonly constSizeBytes: number;
  /** Local memory per thread: non-zero means register spills or stack arrays. */
  readonly localSizeBytes: number;
  readonly numRegs: number;
  readonly ptxVersion: number;
  readonly binaryVersion: number;
  /** The dynamic shared memory the kernel may currently be launched with. */
  readonly maxDynamicSharedSizeBytes: number;
}

export type Dim3 = readonly [number, number, number];

export interface LaunchConfig {
  readonly grid: Dim3;
  readonly block: Dim3;
  /** Dynamic shared memory per block (default 0). */
  readonly sharedBytes?: number;
  /** Default: the device's default stream. */
  readonly stream?: CudaStream;
  /**
   * The kernel's one by-value argument (its parameter struct), packed exactly as the kernel
   * declares it; the driver copies it at launch, so it may be reused at once. Empty for a
   * kernel without parameters.
   */
  readonly params: Uint8Array;
  /**
   * Launch with CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, letting the kernel start
   * while the previous kernel on the stream finishes (it must wait with griddepcontrol.wait
   * before reading that kernel's results).
   */
  readonly programmaticDependentLaunch?: boolean;
}

/** Hardware limits of a launch (CUDA programming guide, compute capability 9.0). */
export const LAUNCH_LIMITS = {
  maxGridX: 2 ** 31 - 1,
  maxGridYZ: 65535,
  maxBlockXY: 1024,
  maxBlockZ: 64,
  maxThreadsPerBlock: 1024,
  /** Kernel parameter space since CUDA 12.1 on Volta and newer. */
  maxParamBytes: 32764,
} as const;

/** Checks a launch's shape before it reaches the driver, naming the offending field. */
export function validateLaunchConfig(config: LaunchConfig): void {
  const { maxGridX, maxGridYZ, maxBlockXY, maxBlockZ, maxThreadsPerBlock, maxParamBytes } =
    LAUNCH_LIMITS;
  checkDims('grid', config.grid, [maxGridX, maxGridYZ, maxGridYZ]);
  checkDims('block', config.block, [maxBlockXY, maxBlockXY, maxBlockZ]);
  const threads = config.block[0] * config.block[1] * config.block[2];
  if (threads > maxThreadsPerBlock) {
    throw new LimitError(
      'block',
      `at most ${maxThreadsPerBlock} threads per block`,
      `${threads} threads`,
    );
  }
  const sharedBytes = config.sharedBytes ?? 0;
  if (!Number.isInteger(sharedBytes) || sharedBytes < 0 || sharedBytes > 0xffffffff) {
    throw new LimitError('sharedBytes', 'a non-negative integer byte count', String(sharedBytes));
  }
  if (!(config.params instanceof Uint8Array)) {
    throw new OptionError(
      'params',
      'a Uint8Array holding the packed parameter struct',
      describeValue(config.params),
    );
  }
  if (config.params.byteLength > maxParamBytes) {
    throw new LimitError(
      'params',
      `at most ${maxParamBytes} bytes`,
      `${config.params.byteLength} bytes`,
    );
  }
}

function checkDims(argument: string, dims: Dim3, limits: readonly [number, number, number]): void {
  if (!Array.isArray(dims) || dims.length !== 3) {
    throw new OptionError(argument, 'three dimensions [x, y, z]', describeValue(dims));
  }
  for (let axis = 0; axis < 3; axis++) {
    const size = dims[axis];
    if (!Number.isInteger(size) || size < 1 || size > limits[axis]) {
      throw new LimitError(
        `${argument}[${axis}]`,
        `an integer in [1, ${limits[axis]}]`,
        String(size),
      );
    }
  }
}

/*
 * cuLaunchKernelEx's arguments, laid out as cuda.h (CUDA 13.0) declares them for LP64:
 *   CUlaunchConfig (56 bytes, 8-aligned): gridDimX..blockDimZ and sharedMemBytes as seven
 *   uint32 at 0..27, 4 bytes of padding, CUstream hStream at 32, CUlaunchAttribute *attrs at 40,
 *   unsigned numAttrs at 48, padding to 56.
 *   CUlaunchAttribute (72 bytes, 8-aligned): CUlaunchAttributeID id at 0, char pad[4], then the
 *   64-byte CUlaunchAttributeValue union at 8, whose int programmaticStreamSerializationAllowed
 *   is its first 4 bytes.
 * We keep both in one block, the attribute at byte 64, so one address serves both.
 */
const LAUNCH_ATTRIBUTE_BYTES = 72;
const ATTRIBUTE_OFFSET = 64;
export const PROGRAMMATIC_LAUNCH_BLOCK_BYTES = ATTRIBUTE_OFFSET + LAUNCH_ATTRIBUTE_BYTES;

/**
 * Writes a CUlaunchConfig with one PROGRAMMATIC_STREAM_SERIALIZATION = 1 attribute into
 * `target` (PROGRAMMATIC_LAUNCH_BLOCK_BYTES long), whose host address is `targetAddress`.
 */
export function encodeProgrammaticLaunchConfig(
  target: Uint8Array,
  targetAddress: bigint,
  launch: { grid: Dim3; block: Dim3; sharedBytes: number; stream: Handle },
): void {
  if (target.byteLength !== PROGRAMMATIC_LAUNCH_BLOCK_BYTES) {
    throw new OptionError(
      'target',
      `${PROGRAMMATIC_LAUNCH_BLOCK_BYTES} bytes`,
      `${target.byteLength} bytes`,
    );
  }
  target.fill(0);
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  writeLaunchShape(view, launch.grid, launch.block, launch.sharedBytes, launch.stream);
  view.setBigUint64(40, targetAddress + BigInt(ATTRIBUTE_OFFSET), true);
  view.setUint32(48, 1, true);
  view.setUint32(ATTRIBUTE_OFFSET, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, true);
  view.setInt32(ATTRIBUTE_OFFSET + 8, 1, true);
}

/** The per-launch fields of a CUlaunchConfig at the start of `view`: grid, block, shared bytes, stream. */
function writeLaunchShape(
  view: DataView,
  grid: Dim3,
  block: Dim3,
  sharedBytes: number,
  stream: Handle,
): void {
  view.setUint32(0, grid[0], true);
  view.setUint32(4, grid[1], true);
  view.setUint32(8, grid[2], true);
  view.setUint32(12, block[0], true);
  view.setUint32(16, block[1], true);
  view.setUint32(20, block[2], true);
  view.setUint32(24, sharedBytes, true);
  view.setBigUint64(32, stream, true);
}

/*
 * The native memory a function's launches hand the driver, written in place at every launch
 * (the driver copies what it needs before returning, so the next launch may rewrite it at once):
 * the programmatic launch config at 0, the one-entry kernelParams array at 136 pointing at the
 * parameter struct at 144.
 */
const KERNEL_PARAMS_OFFSET = PROGRAMMATIC_LAUNCH_BLOCK_BYTES;
const PARAMS_OFFSET = KERNEL_PARAMS_OFFSET + 8;
/** Room for the parameter structs of this library's kernels; larger ones get a larger block. */
const DEFAULT_PARAMS_CAPACITY = 512;

interface LaunchBlock {
  readonly native: NativeBlock;
  readonly paramsCapacity: number;
  readonly configAddress: HostAddress;
  readonly kernelParamsAddress: HostAddress;
}

function allocateLaunchBlock(paramsCapacity: number): LaunchBlock {
  const native = allocateNativeBlock(PARAMS_OFFSET + paramsCapacity);
  encodeProgrammaticLaunchConfig(
    native.bytes.subarray(0, PROGRAMMATIC_LAUNCH_BLOCK_BYTES),
    native.address,
    { grid: [1, 1, 1], block: [1, 1, 1], sharedBytes: 0, stream: 0n },
  );
  native.view.setBigUint64(KERNEL_PARAMS_OFFSET, native.address + BigInt(PARAMS_OFFSET), true);
  return {
    native,
    paramsCapacity,
    configAddress: native.address,
    kernelParamsAddress: native.address + BigInt(KERNEL_PARAMS_OFFSET),
  };
}

/** A kernel of a loaded module. */
export class CudaFunction {
  readonly module: CudaModule;
  readonly name: string;
  private readonly functionHandle: Handle;
  private launchBlock: LaunchBlock | undefined;

  /** Use CudaModule.getFunction(). */
  constructor(module: CudaModule, name: string, handle: Handle) {
    this.module = module;
    this.name = name;
    this.functionHandle = handle;
  }

  get device(): CudaDevice {
    return this.module.device;
  }

  get handle(): Handle {
    if (this.module.disposed)
      throw new DisposedError(`kernel ${this.name}: its module was unloaded`);
    return this.functionHandle;
  }

  /** Lets the kernel be launched with up to `bytes` of dynamic shared memory (beyond 48 KiB needs this). */
  setMaxDynamicSharedMemory(bytes: number): void {
    const limit = this.device.maxSharedMemoryPerBlockOptin - this.attributes().sharedSizeBytes;
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > limit) {
      throw new LimitError(
        'bytes',
        `an integer in [0, ${limit}] (the device's opt-in shared memory less the kernel's static shared memory)`,
        String(bytes),
      );
    }
    const handle = this.handle;
    this.device.call('cuFuncSetAttribute', (cu) =>
      cu.cuFuncSetAttribute(handle, FunctionAttribute.MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
    );
  }

  attributes(): FunctionAttributes {
    const handle = this.handle;
    const value = new Int32Array(1);
    const read = (attribute: number): number => {
      this.device.call('cuFuncGetAttribute', (cu) =>
        cu.cuFuncGetAttribute(value, attribute, handle),
      );
      return value[0];
    };
    return {
      maxThreadsPerBlock: read(FunctionAttribute.MAX_THREADS_PER_BLOCK),
      sharedSizeBytes: read(FunctionAttribute.SHARED_SIZE_BYTES),
      constSizeBytes: read(FunctionAttribute.CONST_SIZE_BYTES),
      localSizeBytes: read(FunctionAttribute.LOCAL_SIZE_BYTES),
      numRegs: read(FunctionAttribute.NUM_REGS),
      ptxVersion: read(FunctionAttribute.PTX_VERSION),
      binaryVersion: read(FunctionAttribute.BINARY_VERSION),
      maxDynamicSharedSizeBytes: read(FunctionAttribute.MAX_DYNAMIC_SHARED_SIZE_BYTES),
    };
  }

  /** Enqueues the kernel; returns at once. Nothing is allocated on this path. */
  launch(config: LaunchConfig): void {
    validateLaunchConfig(config);
    const sharedBytes = config.sharedBytes ?? 0;
    if (sharedBytes > this.device.maxSharedMemoryPerBlockOptin) {
      throw new LimitError(
        'sharedBytes',
        `at most ${this.device.maxSharedMemoryPerBlockOptin} bytes (${this.device.name})`,
        String(sharedBytes),
      );
    }
    const stream = config.stream ?? this.device.defaultStream;
    assertSameDevice('stream', this.device, stream.device);
    const handle = this.handle;
    const streamHandle = stream.handle;
    const paramBytes = config.params.byteLength;
    const block = this.launchBlockFor(paramBytes);
    block.native.bytes.set(config.params, PARAMS_OFFSET);
    const kernelParams = paramBytes > 0 ? block.kernelParamsAddress : 0n;
    const { grid, block: threads } = config;

    if (config.programmaticDependentLaunch === true) {
      writeLaunchShape(block.native.view, grid, threads, sharedBytes, streamHandle);
      const launchConfig = block.configAddress;
      this.device.call('cuLaunchKernelEx', (cu) =>
        cu.cuLaunchKernelEx(launchConfig, handle, kernelParams, null),
      );
      return;
    }
    this.device.call('cuLaunchKernel', (cu) =>
      cu.cuLaunchKernel(
        handle,
        grid[0],
        grid[1],
        grid[2],
        threads[0],
        threads[1],
        threads[2],
        sharedBytes,
        streamHandle,
        kernelParams,
        null,
      ),
    );
  }

  /** Frees the native launch memory (the module calls it when it unloads). */
  releaseLaunchBlock(): void {
    if (this.launchBlock !== undefined) freeNativeBlock(this.launchBlock.native);
    this.launchBlock = undefined;
  }

  private launchBlockFor(paramBytes: number): LaunchBlock {
    const current = this.launchBlock;
    if (current !== undefined && paramBytes <= current.paramsCapacity) return current;
    this.releaseLaunchBlock();
    const block = allocateLaunchBlock(Math.max(paramBytes, DEFAULT_PARAMS_CAPACITY));
    this.launchBlock = block;
    return block;
  }
}

function describeValue(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `[${value.join(', ')}]` : value.constructor.name;
}
