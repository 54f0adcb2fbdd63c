import { DeviceMismatchError, FlashMlaError } from '../errors.js';
import type { CudaDevice } from './device.js';

/** What the driver said about one failed call. */
export interface CudaFailure {
  /** The CUresult value. */
  readonly result: number;
  /** Its enum name from cuGetErrorName, e.g. 'CUDA_ERROR_ILLEGAL_ADDRESS'. */
  readonly resultName: string;
  /** The driver's description from cuGetErrorString. */
  readonly driverMessage: string;
  /** The driver function that returned it, e.g. 'cuStreamSynchronize'. */
  readonly call: string;
}

/** A CUDA driver call returned an error. */
export class CudaError extends FlashMlaError implements CudaFailure {
  readonly code: 'ERR_CUDA' | 'ERR_CUDA_CONTEXT_LOST' = 'ERR_CUDA';
  override readonly name: string = 'CudaError';
  readonly result: number;
  readonly resultName: string;
  readonly driverMessage: string;
  readonly call: string;

  constructor(failure: CudaFailure, message = describeCudaFailure(failure)) {
    super(message);
    this.result = failure.result;
    this.resultName = failure.resultName;
    this.driverMessage = failure.driverMessage;
    this.call = failure.call;
  }
}

/**
 * The device's context hit a sticky error (an illegal address, a failed launch, a trap...): the
 * driver keeps returning that error for every later call in the process, so the device is marked
 * lost and later calls throw this at once instead of reaching the driver. `original` is the error
 * that lost it; `result`, `resultName` and `driverMessage` repeat it, `call` names the call that
 * was refused (or the one that failed, for the first). Only a new process can use the GPU again.
 */
export class CudaContextLostError extends CudaError {
  override readonly code = 'ERR_CUDA_CONTEXT_LOST';
  override readonly name: string = 'CudaContextLostError';
  readonly ordinal: number;
  readonly original: CudaFailure;

  constructor(ordinal: number, original: CudaFailure, refusedCall?: string) {
    const lost = `the CUDA context of cuda:${ordinal} is lost: ${describeCudaFailure(original)}; restart the process to use this GPU again`;
    super(
      { ...original, call: refusedCall ?? original.call },
      refusedCall === undefined ? lost : `${refusedCall} was not run: ${lost}`,
    );
    this.ordinal = ordinal;
    this.original = original;
  }
}

/**
 * CUresult values after which the context is unusable (cuda.h: "This leaves the process in an
 * inconsistent state and any further CUDA work will return the same error", and ASSERT's "the
 * context cannot be used anymore").
 */
const STICKY_RESULTS: ReadonlySet<number> = new Set([
  214, // CUDA_ERROR_ECC_UNCORRECTABLE
  226, // CUDA_ERROR_CONTAINED
  700, // CUDA_ERROR_ILLEGAL_ADDRESS
  702, // CUDA_ERROR_LAUNCH_TIMEOUT
  710, // CUDA_ERROR_ASSERT
  714, // CUDA_ERROR_HARDWARE_STACK_ERROR
  715, // CUDA_ERROR_ILLEGAL_INSTRUCTION
  716, // CUDA_ERROR_MISALIGNED_ADDRESS
  717, // CUDA_ERROR_INVALID_ADDRESS_SPACE
  718, // CUDA_ERROR_INVALID_PC
  719, // CUDA_ERROR_LAUNCH_FAILED
  721, // CUDA_ERROR_TENSOR_MEMORY_LEAK
  810, // CUDA_ERROR_MPS_CLIENT_TERMINATED
  911, // CUDA_ERROR_EXTERNAL_DEVICE
]);

export function isStickyCudaResult(result: number): boolean {
  return STICKY_RESULTS.has(result);
}

export function describeCudaFailure(failure: CudaFailure): string {
  return `${failure.call} failed with ${failure.resultName} (${failure.result}): ${failure.driverMessage}`;
}

/** Throws DeviceMismatchError unless `actual` is `expected` (streams, events, buffers...). */
export function assertSameDevice(argument: string, expected: CudaDevice, actual: CudaDevice): void {
  if (actual !== expected) {
    throw new DeviceMismatchError(
      argument,
      `an object of cuda:${expected.ordinal}`,
      `one of cuda:${actual.ordinal}${actual.ordinal === expected.ordinal ? ' (a disposed and reopened device)' : ''}`,
    );
  }
}
