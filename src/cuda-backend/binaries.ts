/**
 * The compiled kernels: dist/kernels/*.cubin (built by scripts/build-kernels.mjs from csrc/,
 * shipped in the package), their manifest and the layout file the build emits; in a clone of the
 * repository also dist/test-kernels/ (kernels only the tests launch, not shipped). A KernelSet
 * loads every cubin of both into one device's context once and raises each kernel's dynamic
 * shared-memory limit.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CudaDevice } from '../cuda/device.js';
import { type CudaFunction, CudaModule } from '../cuda/module.js';
import { GpuUnavailableError } from '../errors.js';

/** dist/kernels, next to dist/src where this module runs from. */
export const KERNEL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels');
/** dist/test-kernels: the test-only kernels, present in a clone of the repository after a build. */
const TEST_KERNEL_DIR = join(KERNEL_DIR, '..', 'test-kernels');

export interface KernelManifest {
  nvccVersion: string;
  builtAt: string;
  cubins: Record<string, string[]>;
  kernels: Record<
    string,
    {
      cubin: string;
      registers: number;
      stackFrame: number;
      spillStores: number;
      spillLoads: number;
    }
  >;
}

export interface KernelLayoutFile {
  structs: Record<
    string,
    {
      size: number;
      align: number;
      fields: Record<string, { offset: number; size: number; type: string }>;
    }
  >;
  constants: Record<string, number>;
  kernels: Record<
    string,
    {
      threads: number;
      dynamicSmemBytes?: number;
      maxDynamicSmemBytes?: number;
      dynamicSmemBytesPerSequence?: number;
      rowsPerBlock?: number;
      /** The combine kernel: CTAs per block of rows, each merging a slice of the channels. */
      channelSlices?: number;
    }
  >;
}

/** Why the kernels cannot be used here (null when they are all present). */
export function missingBinariesReason(): string | null {
  const manifestPath = join(KERNEL_DIR, 'manifest.json');
  if (!existsSync(manifestPath)) return `no kernel binaries in ${KERNEL_DIR}`;
  const manifest = readManifest();
  const missing = Object.keys(manifest.cubins).filter(
    (file) => !existsSync(join(KERNEL_DIR, file)),
  );
  return missing.length > 0 ? `kernel binaries missing: ${missing.join(', ')}` : null;
}

export function readManifest(dir = KERNEL_DIR): KernelManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as KernelManifest;
}

export function readLayoutFile(): KernelLayoutFile {
  return JSON.parse(readFileSync(join(KERNEL_DIR, 'layout.json'), 'utf8')) as KernelLayoutFile;
}

/** What to do when the kernels are missing, for someone who installed the package as well as for a clone. */
export const NO_BINARIES_FIX =
  'this copy of flashmla was built where nvcc was not found: install a release of the package ' +
  '(it ships the kernels), or in a clone of its repository run `npm run build` with nvcc 13.0 ' +
  '(CUDA Toolkit 13) on the PATH';

/** Every kernel of the library, loaded into one device. */
export class KernelSet {
  readonly device: CudaDevice;
  readonly layout: KernelLayoutFile;
  private readonly modules: CudaModule[] = [];
  private readonly functions = new Map<string, CudaFunction>();

  private constructor(device: CudaDevice) {
    this.device = device;
    const reason = missingBinariesReason();
    if (reason) throw new GpuUnavailableError(reason, NO_BINARIES_FIX);
    this.layout = readLayoutFile();
    const dirs = [
      KERNEL_DIR,
      ...(existsSync(join(TEST_KERNEL_DIR, 'manifest.json')) ? [TEST_KERNEL_DIR] : []),
    ];
    const cubins = dirs.flatMap((dir) =>
      Object.entries(readManifest(dir).cubins).map(([file, names]) => ({
        path: join(dir, file),
        names,
      })),
    );
    try {
      for (const { path, names } of cubins) {
        const module = CudaModule.load(device, readFileSync(path));
        this.modules.push(module);
        for (const name of names) {
          const fn = module.getFunction(name);
          const limit =
            this.layout.kernels[name]?.maxDynamicSmemBytes ??
            this.layout.kernels[name]?.dynamicSmemBytes ??
            0;
          if (limit > 48 * 1024) fn.setMaxDynamicSharedMemory(limit);
          this.functions.set(name, fn);
        }
      }
    } catch (error) {
      this.dispose();
      const message = error instanceof Error ? error.message : String(error);
      throw new GpuUnavailableError(
        `our kernel binaries do not load on ${device.name} (${message})`,
        NO_BINARIES_FIX,
      );
    }
  }

  private static readonly loaded = new Map<CudaDevice, KernelSet>();

  /** The device's kernel set, loaded on first use. */
  static for(device: CudaDevice): KernelSet {
    let set = KernelSet.loaded.get(device);
    if (!set) {
      set = new KernelSet(device);
      KernelSet.loaded.set(device, set);
    }
    return set;
  }

  get(name: string): CudaFunction {
    const fn = this.functions.get(name);
    if (!fn)
      throw new GpuUnavailableError(`kernel ${name} is not in the built binaries`, NO_BINARIES_FIX);
    return fn;
  }

  /** Threads per block and launch constants of a kernel, from the layout file. */
  kernelInfo(name: string): KernelLayoutFile['kernels'][string] {
    return this.layout.kernels[name];
  }

  dispose(): void {
    for (const module of this.modules) module.dispose();
    this.modules.length = 0;
    this.functions.clear();
    KernelSet.loaded.delete(this.device);
  }
}
