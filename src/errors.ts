/**
 * Every error the library throws on purpose is a FlashMlaError with a stable `code`. Argument
 * errors also name the argument, what was expected and what was given, so a message reads
 * `q: expected dtype bf16 or fp16, got float32`.
 */

export type ErrorCode =
  | 'ERR_DTYPE'
  | 'ERR_SHAPE'
  | 'ERR_STRIDE'
  | 'ERR_VALUE'
  | 'ERR_OPTION'
  | 'ERR_DEVICE_MISMATCH'
  | 'ERR_METADATA_MISMATCH'
  | 'ERR_LIMIT'
  | 'ERR_DISPOSED'
  | 'ERR_GPU_UNAVAILABLE'
  | 'ERR_CUDA'
  | 'ERR_CUDA_CONTEXT_LOST';

export abstract class FlashMlaError extends Error {
  abstract readonly code: ErrorCode;
}

/** An argument-level error: names the argument, what was expected and what was given. */
export abstract class ArgumentError extends FlashMlaError {
  readonly argument: string;
  readonly expected: string;
  readonly actual: string;

  constructor(argument: string, expected: string, actual: string) {
    super(`${argument}: expected ${expected}, got ${actual}`);
    this.argument = argument;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Wrong element type (q not bf16/fp16, kCache unlike q, int32 tensors that are not int32). */
export class DtypeError extends ArgumentError {
  readonly code = 'ERR_DTYPE';
  override readonly name = 'DtypeError';
}

/** Wrong rank, size or a size that disagrees with another argument. */
export class ShapeError extends ArgumentError {
  readonly code = 'ERR_SHAPE';
  override readonly name = 'ShapeError';
}

/** A layout the kernels cannot read: non-contiguous last dimension, misaligned outer strides. */
export class StrideError extends ArgumentError {
  readonly code = 'ERR_STRIDE';
  override readonly name = 'StrideError';
}

/** A value inside a tensor is out of range (negative length, block id outside the cache). */
export class ValueError extends ArgumentError {
  readonly code = 'ERR_VALUE';
  override readonly name = 'ValueError';
}

/** A bad option (softmaxScale not finite, unknown backend name, ...). */
export class OptionError extends ArgumentError {
  readonly code = 'ERR_OPTION';
  override readonly name = 'OptionError';
}

/** Tensors that live in different places (host and device, or two devices). */
export class DeviceMismatchError extends ArgumentError {
  readonly code = 'ERR_DEVICE_MISMATCH';
  override readonly name = 'DeviceMismatchError';
}

/** Scheduler metadata made for another batch size or head layout. */
export class MetadataMismatchError extends ArgumentError {
  readonly code = 'ERR_METADATA_MISMATCH';
  override readonly name = 'MetadataMismatchError';
}

/** A size beyond what the kernels' index types or on-chip buffers can hold. */
export class LimitError extends ArgumentError {
  readonly code = 'ERR_LIMIT';
  override readonly name = 'LimitError';
}

/** A tensor or resource used after dispose(). */
export class DisposedError extends FlashMlaError {
  readonly code = 'ERR_DISPOSED';
  override readonly name = 'DisposedError';
}

/** The CUDA backend cannot run here; `reason` says why in plain words, `fix` what would help. */
export class GpuUnavailableError extends FlashMlaError {
  readonly code = 'ERR_GPU_UNAVAILABLE';
  override readonly name = 'GpuUnavailableError';
  readonly reason: string;
  readonly fix: string;

  constructor(reason: string, fix: string) {
    super(`CUDA backend unavailable: ${reason}${fix ? ` (${fix})` : ''}`);
    this.reason = reason;
    this.fix = fix;
  }
}
