import { DisposedError, LimitError, OptionError } from '../errors.js';
import type { CudaDevice } from './device.js';
import {
  CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
  FunctionAttribute,
  type Handle,
  hostAddress,
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
  const fields = [...launch.grid, ...launch.block, launch.sharedBytes];
  for (const [index, value] of fields.entries()) view.setUint32(index * 4, value, true);
  view.setBigUint64(32, launch.stream, true);
  view.setBigUint64(40, targetAddress + BigInt(ATTRIBUTE_OFFSET), true);
  view.setUint32(48, 1, true);
  view.setUint32(ATTRIBUTE_OFFSET, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, true);
  view.setInt32(ATTRIBUTE_OFFSET + 8, 1, true);
}

/** A kernel of a loaded module. */
export class CudaFunction {
  readonly module: CudaModule;
  readonly name: string;
  private readonly functionHandle: Handle;

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

  /** Enqueues the kernel; returns at once. */
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
    const kernelParams = config.params.byteLength > 0 ? [config.params] : null;
    const [gridX, gridY, gridZ] = config.grid;
    const [blockX, blockY, blockZ] = config.block;

    if (config.programmaticDependentLaunch === true) {
      const launchConfig = new Uint8Array(PROGRAMMATIC_LAUNCH_BLOCK_BYTES);
      encodeProgrammaticLaunchConfig(launchConfig, hostAddress(launchConfig), {
        grid: config.grid,
        block: config.block,
        sharedBytes,
        stream: streamHandle,
      });
      this.device.call('cuLaunchKernelEx', (cu) =>
        cu.cuLaunchKernelEx(launchConfig, handle, kernelParams, null),
      );
      return;
    }
    this.device.call('cuLaunchKernel', (cu) =>
      cu.cuLaunchKernel(
        handle,
        gridX,
        gridY,
        gridZ,
        blockX,
        blockY,
        blockZ,
        sharedBytes,
        streamHandle,
        kernelParams,
        null,
      ),
    );
  }
}

function describeValue(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? `[${value.join(', ')}]` : value.constructor.name;
}
