/** `flashmla info`: what can run here, and for every backend that cannot, why and what would fix it. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defaultBackendChoice } from '../api/open-backend.js';
import { CudaDevice } from '../cuda/device.js';
import { formatDriverVersion } from '../cuda/driver.js';
import { probeCuda } from '../cuda/probe.js';
import {
  KERNEL_DIR,
  KernelSet,
  missingBinariesReason,
  NO_BINARIES_FIX,
  readManifest,
} from '../cuda-backend/binaries.js';
import { GpuUnavailableError, OptionError } from '../errors.js';
import type { Command } from './command.js';

export const infoCommand: Command = {
  name: 'info',
  summary: 'show versions, GPUs, kernel binaries and which backends can run here',
  help: `Usage: flashmla info [--json]

Prints the Node.js, flashmla and koffi versions, the NVIDIA driver version, every GPU (name,
compute capability, SMs, memory), whether the kernel binaries are present and load, and for each
backend that cannot run here, why, with the fix, and the backend chosen where none is named
($FLASHMLA_BACKEND if set, else auto). Exit code 1 if FLASHMLA_BACKEND names no backend.

  --json   print the same as one JSON object`,
  options: { json: { type: 'boolean' } },
  async run(values) {
    const info = collectInfo();
    const exitCode = info.defaultBackend.error === null ? 0 : 1;
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      if (info.defaultBackend.error !== null)
        console.error(`flashmla: ${info.defaultBackend.error}`);
      return exitCode;
    }
    const lines = [
      `flashmla ${info.flashmla}   Node.js ${info.node}   koffi ${info.koffi ?? 'not installed'}`,
      `kernel binaries: ${info.kernels.present ? `${KERNEL_DIR} (nvcc ${info.kernels.nvcc}, built ${info.kernels.builtAt})` : `${info.kernels.reason}\n        fix: ${info.kernels.fix}`}`,
      `NVIDIA driver: ${info.driver ?? 'not found'}`,
      ...info.gpus.map(
        (gpu) =>
          `GPU ${gpu.ordinal}: ${gpu.name}, compute capability ${gpu.computeCapability}, ${gpu.multiProcessors} SMs, ${gpu.memoryGiB.toFixed(1)} GiB${gpu.kernelsLoad === true ? ', kernels load' : gpu.kernelsLoad ? `, kernels do not load: ${gpu.kernelsLoad}` : ''}`,
      ),
      '',
      'backends:',
      `  cuda  ${info.cuda.usable ? `usable (${info.cuda.detail})` : `not usable: ${info.cuda.detail}${info.cuda.fix ? `\n        fix: ${info.cuda.fix}` : ''}`}`,
      '  cpu   usable (float64 split-KV on the host; slow, for checking and machines without a GPU)',
      `default backend: ${describeDefault(info)}`,
    ];
    console.log(lines.join('\n'));
    if (info.defaultBackend.error !== null) console.error(`flashmla: ${info.defaultBackend.error}`);
    return exitCode;
  },
};

function describeDefault(info: Info): string {
  const { choice, setBy, error } = info.defaultBackend;
  if (error !== null) return 'none: FLASHMLA_BACKEND names no backend (auto, cuda or cpu)';
  const resolved = choice === 'auto' ? (info.cuda.usable ? 'cuda' : 'cpu') : choice;
  return setBy === 'FLASHMLA_BACKEND'
    ? `${resolved} (FLASHMLA_BACKEND=${choice})`
    : `${resolved} (auto; set FLASHMLA_BACKEND or pass --backend to choose)`;
}

interface Info {
  flashmla: string;
  node: string;
  koffi: string | null;
  driver: string | null;
  kernels: {
    present: boolean;
    reason: string | null;
    /** What would put them here, where they are missing. */
    fix: string | null;
    nvcc: string | null;
    builtAt: string | null;
  };
  gpus: {
    ordinal: number;
    name: string;
    computeCapability: string;
    multiProcessors: number;
    memoryGiB: number;
    kernelsLoad: true | string | null;
  }[];
  cuda: { usable: boolean; detail: string; fix: string };
  /** The backend openBackend() and the commands use where none is named. */
  defaultBackend: {
    choice: 'auto' | 'cuda' | 'cpu' | null;
    setBy: 'FLASHMLA_BACKEND' | 'default';
    /** Why FLASHMLA_BACKEND is refused, or null. */
    error: string | null;
  };
}

function collectInfo(): Info {
  const require = createRequire(import.meta.url);
  const packageJson = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  let koffi: string | null = null;
  try {
    const koffiRoot = dirname(require.resolve('koffi'));
    koffi = (
      JSON.parse(readFileSync(join(koffiRoot, 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch {
    koffi = null;
  }
  const missing = missingBinariesReason();
  const manifest = missing ? null : readManifest();
  const info: Info = {
    flashmla: packageJson.version,
    node: process.versions.node,
    koffi,
    driver: null,
    kernels: {
      present: !missing,
      reason: missing,
      fix: missing ? NO_BINARIES_FIX : null,
      nvcc: manifest?.nvccVersion ?? null,
      builtAt: manifest?.builtAt ?? null,
    },
    gpus: [],
    cuda: { usable: false, detail: '', fix: '' },
    defaultBackend: readDefaultBackend(),
  };
  const probe = probeCuda(0);
  if (!probe.ok) {
    info.cuda = { usable: false, detail: probe.reason, fix: probe.fix };
  }
  try {
    info.driver = formatDriverVersion(CudaDevice.driverVersion());
    for (let ordinal = 0; ordinal < CudaDevice.count(); ordinal++) {
      const device = CudaDevice.open(ordinal);
      info.gpus.push({
        ordinal,
        name: device.name,
        computeCapability: `${device.computeCapability.major}.${device.computeCapability.minor}`,
        multiProcessors: device.multiProcessorCount,
        memoryGiB: device.totalMemoryBytes / 2 ** 30,
        kernelsLoad: kernelsLoad(device),
      });
    }
  } catch {
    // No driver or no device: the probe's reason already says so.
  }
  if (probe.ok) {
    const first = info.gpus[0];
    if (first?.kernelsLoad === true)
      info.cuda = { usable: true, detail: `cuda:0 ${first.name}`, fix: '' };
    else
      info.cuda = {
        usable: false,
        detail: first?.kernelsLoad || 'kernels do not load',
        fix: missing ? NO_BINARIES_FIX : '',
      };
  }
  return info;
}

function readDefaultBackend(): Info['defaultBackend'] {
  try {
    const { choice, from } = defaultBackendChoice();
    return { choice, setBy: from ?? 'default', error: null };
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    return { choice: null, setBy: 'FLASHMLA_BACKEND', error: error.message };
  }
}

function kernelsLoad(device: CudaDevice): true | string | null {
  if (device.computeCapability.major !== 9 || device.computeCapability.minor !== 0) return null;
  try {
    KernelSet.for(device);
    return true;
  } catch (error) {
    return error instanceof GpuUnavailableError ? error.reason : String(error);
  }
}
