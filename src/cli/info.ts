/** `flashmla info`: what can run here, and for every backend that cannot, why and what would fix it. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CudaDevice } from '../cuda/device.js';
import { formatDriverVersion } from '../cuda/driver.js';
import { probeCuda } from '../cuda/probe.js';
import {
  KERNEL_DIR,
  KernelSet,
  missingBinariesReason,
  readManifest,
} from '../cuda-backend/binaries.js';
import { GpuUnavailableError } from '../errors.js';
import type { Command } from './command.js';

export const infoCommand: Command = {
  name: 'info',
  summary: 'show versions, GPUs, kernel binaries and which backends can run here',
  help: `Usage: flashmla info [--json]

Prints the Node.js, flashmla and koffi versions, the NVIDIA driver version, every GPU (name,
compute capability, SMs, memory), whether the kernel binaries are present and load, and for each
backend that cannot run here, why, with the fix.

  --json   print the same as one JSON object`,
  options: { json: { type: 'boolean' } },
  async run(values) {
    const info = collectInfo();
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      return 0;
    }
    const lines = [
      `flashmla ${info.flashmla}   Node.js ${info.node}   koffi ${info.koffi ?? 'not installed'}`,
      `kernel binaries: ${info.kernels.present ? `${KERNEL_DIR} (nvcc ${info.kernels.nvcc}, built ${info.kernels.builtAt})` : info.kernels.reason}`,
      `NVIDIA driver: ${info.driver ?? 'not found'}`,
      ...info.gpus.map(
        (gpu) =>
          `GPU ${gpu.ordinal}: ${gpu.name}, compute capability ${gpu.computeCapability}, ${gpu.multiProcessors} SMs, ${gpu.memoryGiB.toFixed(1)} GiB${gpu.kernelsLoad === true ? ', kernels load' : gpu.kernelsLoad ? `, kernels do not load: ${gpu.kernelsLoad}` : ''}`,
      ),
      '',
      'backends:',
      `  cuda  ${info.cuda.usable ? `usable (${info.cuda.detail})` : `not usable: ${info.cuda.detail}${info.cuda.fix ? `\n        fix: ${info.cuda.fix}` : ''}`}`,
      '  cpu   usable (float64 split-KV on the host; slow, for checking and machines without a GPU)',
      `default ('auto'): ${info.cuda.usable ? 'cuda' : 'cpu'}`,
    ];
    console.log(lines.join('\n'));
    return 0;
  },
};

interface Info {
  flashmla: string;
  node: string;
  koffi: string | null;
  driver: string | null;
  kernels: { present: boolean; reason: string | null; nvcc: string | null; builtAt: string | null };
  gpus: {
    ordinal: number;
    name: string;
    computeCapability: string;
    multiProcessors: number;
    memoryGiB: number;
    kernelsLoad: true | string | null;
  }[];
  cuda: { usable: boolean; detail: string; fix: string };
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
      nvcc: manifest?.nvccVersion ?? null,
      builtAt: manifest?.builtAt ?? null,
    },
    gpus: [],
    cuda: { usable: false, detail: '', fix: '' },
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
        fix: missing ? 'run `npm run build` where nvcc 13.0 is installed' : '',
      };
  }
  return info;
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
