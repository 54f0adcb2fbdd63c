import { GpuUnavailableError } from '../errors.js';
import {
  cudaDeviceCount,
  cudaDriverVersion,
  type DeviceProperties,
  readDeviceProperties,
} from './device.js';
import { formatDriverVersion, initDriver, loadDriver, REQUIRED_DRIVER_VERSION } from './driver.js';
import { CudaError } from './errors.js';

/** The GPU generation the sm_90a kernels run on. */
export const REQUIRED_COMPUTE_CAPABILITY = { major: 9, minor: 0 } as const;

export type CudaProbe =
  | {
      readonly ok: true;
      /** e.g. 13000 for CUDA 13.0. */
      readonly driverVersion: number;
      readonly deviceCount: number;
      readonly device: DeviceProperties;
    }
  | {
      readonly ok: false;
      /** What is missing, in plain words. */
      readonly reason: string;
      /** What would help. */
      readonly fix: string;
    };

/**
 * Says whether the CUDA backend can run on device `ordinal`, checking in order: koffi loads,
 * libcuda.so.1 loads and has every entry point we bind, cuInit succeeds, the device exists, it
 * is compute capability 9.0, and the driver is CUDA 13.0 or newer. Never throws. Whether our
 * cubins load on it is for the kernel layer to add.
 */
export function probeCuda(ordinal = 0): CudaProbe {
  try {
    return probe(ordinal);
  } catch (error) {
    return {
      ok: false,
      reason: `the CUDA driver failed unexpectedly (${error instanceof Error ? error.message : String(error)})`,
      fix: 'check the driver with nvidia-smi',
    };
  }
}

function probe(ordinal: number): CudaProbe {
  try {
    loadDriver();
  } catch (error) {
    if (error instanceof GpuUnavailableError)
      return { ok: false, reason: error.reason, fix: error.fix };
    throw error;
  }
  try {
    initDriver();
  } catch (error) {
    if (!(error instanceof CudaError)) throw error;
    const noDevice = error.resultName === 'CUDA_ERROR_NO_DEVICE';
    return {
      ok: false,
      reason: noDevice
        ? 'the NVIDIA driver finds no GPU'
        : `the CUDA driver did not initialize (${error.message})`,
      fix: noDevice
        ? 'check nvidia-smi and CUDA_VISIBLE_DEVICES'
        : 'check nvidia-smi, the permissions of /dev/nvidia*, and that the kernel module matches the driver',
    };
  }
  const deviceCount = cudaDeviceCount();
  if (ordinal >= deviceCount || ordinal < 0 || !Number.isInteger(ordinal)) {
    return {
      ok: false,
      reason:
        deviceCount === 0
          ? 'no CUDA device is visible'
          : `there is no CUDA device ${ordinal} (${deviceCount} visible)`,
      fix: 'check nvidia-smi and CUDA_VISIBLE_DEVICES',
    };
  }
  const device = readDeviceProperties(ordinal);
  const { major, minor } = device.computeCapability;
  if (major !== REQUIRED_COMPUTE_CAPABILITY.major || minor !== REQUIRED_COMPUTE_CAPABILITY.minor) {
    return {
      ok: false,
      reason: `${device.name} (cuda:${ordinal}) is compute capability ${major}.${minor}; the kernels are built for 9.0 (sm_90a)`,
      fix: 'use a Hopper GPU (H100, H800, H200), or the CPU backend',
    };
  }
  if (!device.memoryPoolsSupported) {
    return {
      ok: false,
      reason: `${device.name} (cuda:${ordinal}) does not support the stream-ordered allocator (memory pools), which the library allocates with`,
      fix: 'use the GPU without a virtualisation layer that disables memory pools, or the CPU backend',
    };
  }
  const driverVersion = cudaDriverVersion();
  if (driverVersion < REQUIRED_DRIVER_VERSION) {
    return {
      ok: false,
      reason: `the NVIDIA driver supports CUDA ${formatDriverVersion(driverVersion)}; the kernels need CUDA ${formatDriverVersion(REQUIRED_DRIVER_VERSION)}`,
      fix: 'install the NVIDIA driver R580 or newer',
    };
  }
  return { ok: true, driverVersion, deviceCount, device };
}
