/**
 * Backend choice. Calls follow their tensors (host: CPU, cuda:N: the CUDA backend of device N);
 * openBackend() is for callers that want to choose: 'auto' (the GPU if it can run here, else the
 * CPU with one line on stderr saying why), 'cuda' (or GpuUnavailableError with the reason) or
 * 'cpu'. The environment variable FLASHMLA_BACKEND overrides the choice.
 */
import type { Backend } from '../backend/backend.js';
import { cpuBackend } from '../cpu-backend/backend.js';
import { CudaBackend } from '../cuda-backend/backend.js';
import { GpuUnavailableError, OptionError } from '../errors.js';
import { checkOptionKeys, describeValue } from '../options.js';
import type { TensorDevice } from '../tensor/tensor.js';

export type BackendChoice = 'auto' | 'cuda' | 'cpu';

export interface OpenBackendOptions {
  backend?: BackendChoice;
  /** CUDA device ordinal; default 0. */
  device?: number;
  /** Where 'auto' reports a fallback to the CPU; default: one line on stderr. */
  onFallback?: (reason: string) => void;
}

const CHOICES: readonly BackendChoice[] = ['auto', 'cuda', 'cpu'];
const OPTION_KEYS: ReadonlySet<string> = new Set<keyof OpenBackendOptions>([
  'backend',
  'device',
  'onFallback',
]);

export function backendChoice(requested: BackendChoice | undefined): BackendChoice {
  const fromEnv = process.env.FLASHMLA_BACKEND;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!CHOICES.includes(fromEnv as BackendChoice)) {
      throw new OptionError(
        'FLASHMLA_BACKEND',
        `one of ${CHOICES.join(', ')}`,
        JSON.stringify(fromEnv),
      );
    }
    return fromEnv as BackendChoice;
  }
  if (requested !== undefined && !CHOICES.includes(requested)) {
    throw new OptionError('backend', `one of ${CHOICES.join(', ')}`, describeValue(requested));
  }
  return requested ?? 'auto';
}

export function openBackend(options: OpenBackendOptions = {}): Backend {
  checkOptionKeys('options', options, OPTION_KEYS);
  const choice = backendChoice(options.backend);
  if (choice === 'cpu') return cpuBackend;
  const ordinal = options.device ?? 0;
  if (!Number.isSafeInteger(ordinal) || ordinal < 0) {
    throw new OptionError(
      'device',
      'a CUDA device ordinal (integer >= 0)',
      describeValue(options.device),
    );
  }
  try {
    return CudaBackend.open(ordinal);
  } catch (error) {
    if (choice === 'cuda' || !(error instanceof GpuUnavailableError)) throw error;
    const report =
      options.onFallback ??
      ((reason: string) => process.stderr.write(`flashmla: using the CPU backend: ${reason}\n`));
    report(`${error.reason}${error.fix ? ` (${error.fix})` : ''}`);
    return cpuBackend;
  }
}

/** The backend that runs calls on tensors living on `device`. */
export function backendForDevice(device: TensorDevice): Backend {
  return device.kind === 'host' ? cpuBackend : CudaBackend.open(device.ordinal);
}
