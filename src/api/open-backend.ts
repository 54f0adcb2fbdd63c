/**
 * Backend choice. Calls follow their tensors (host: CPU, cuda:N: the CUDA backend of device N);
 * openBackend() is for callers that want to choose: 'auto' (the GPU if it can run here, else the
 * CPU with one line on stderr saying why), 'cuda' (or GpuUnavailableError with the reason) or
 * 'cpu'. The environment variable FLASHMLA_BACKEND replaces the default ('auto') where the caller
 * names no backend; an explicit choice wins over it.
 */
import type { Backend } from '../backend/backend.js';
import { cpuBackend } from '../cpu-backend/backend.js';
import { CudaBackend } from '../cuda-backend/backend.js';
import { GpuUnavailableError, OptionError } from '../errors.js';
import { checkOptionKeys, describeValue } from '../options.js';
import type { TensorDevice } from '../tensor/tensor.js';

export type BackendChoice = 'auto' | 'cuda' | 'cpu';

export interface OpenBackendOptions {
  /** Default: FLASHMLA_BACKEND if set, else 'auto'. */
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

/**
 * The default choice: FLASHMLA_BACKEND where it is set (and not empty), else 'auto'. A value
 * that names no backend is an OptionError wherever a backend is chosen, even where an explicit
 * choice wins, so that a typo in the environment never goes unnoticed.
 */
export function defaultBackendChoice(): { choice: BackendChoice; from: 'FLASHMLA_BACKEND' | null } {
  const fromEnv = process.env.FLASHMLA_BACKEND;
  if (fromEnv === undefined || fromEnv === '') return { choice: 'auto', from: null };
  if (!CHOICES.includes(fromEnv as BackendChoice)) {
    throw new OptionError(
      'FLASHMLA_BACKEND',
      `one of ${CHOICES.join(', ')} (or unset)`,
      JSON.stringify(fromEnv),
    );
  }
  return { choice: fromEnv as BackendChoice, from: 'FLASHMLA_BACKEND' };
}

/** An explicit choice if one is given (checked), else the default. */
export function backendChoice(requested: BackendChoice | undefined): BackendChoice {
  const fallback = defaultBackendChoice().choice;
  if (requested === undefined) return fallback;
  if (!CHOICES.includes(requested)) {
    throw new OptionError('backend', `one of ${CHOICES.join(', ')}`, describeValue(requested));
  }
  return requested;
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
