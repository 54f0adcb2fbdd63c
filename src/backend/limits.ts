/**
 * The largest shapes a backend runs. The limits are the Hopper kernels': the CUDA backend reads
 * them from the kernels it loads, and the CPU backend enforces the same numbers, so that a shape
 * the GPU refuses is refused on the CPU too, with the same error.
 */
import { COMBINE_ROWS_PER_BLOCK, MAX_SCHEDULER_BATCH } from '../config.js';
import { LAUNCH_LIMITS } from '../cuda/module.js';
import { LimitError } from '../errors.js';
import type { DecodeShape } from './backend.js';

export interface BackendLimits {
  /** Most sequences in a batch (b): the scheduler kernel holds one length each in shared memory. */
  readonly maxBatch: number;
  /**
   * Most query rows per KV head (s_q * h_q / h_kv): the combine kernel's grid.z counts them in
   * blocks of a few rows, and a grid's z is at most 65535.
   */
  readonly maxRowsPerKvHead: number;
  /** Most KV heads (h_kv): the decode and combine grids' y dimension, at most 65535. */
  readonly maxHeadsKv: number;
}

/** The limits of the Hopper kernels, as csrc/ builds them (a test pins these to layout.json). */
export const HOPPER_KERNEL_LIMITS: BackendLimits = Object.freeze({
  maxBatch: MAX_SCHEDULER_BATCH,
  maxRowsPerKvHead: COMBINE_ROWS_PER_BLOCK * LAUNCH_LIMITS.maxGridYZ,
  maxHeadsKv: LAUNCH_LIMITS.maxGridYZ,
});

/** Throws LimitError unless a schedule of this batch and head layout fits `limits`. */
export function checkMetadataLimits(
  call: { batch: number; numQRowsPerKvHead: number; numHeadsK: number },
  limits: BackendLimits,
): void {
  if (call.batch > limits.maxBatch) {
    throw new LimitError(
      'cacheSeqlens',
      `at most ${limits.maxBatch} sequences (the scheduler's shared memory)`,
      `${call.batch}`,
    );
  }
  if (call.numQRowsPerKvHead > limits.maxRowsPerKvHead) {
    throw new LimitError(
      'numQRowsPerKvHead',
      `s_q * h_q / h_kv <= ${limits.maxRowsPerKvHead} (combine grid)`,
      `${call.numQRowsPerKvHead}`,
    );
  }
  if (call.numHeadsK > limits.maxHeadsKv) {
    throw new LimitError(
      'numHeadsK',
      `h_kv <= ${limits.maxHeadsKv} (grid dimension)`,
      `${call.numHeadsK}`,
    );
  }
}

/** Throws LimitError unless a decode call of this shape fits `limits`. */
export function checkDecodeLimits(shape: DecodeShape, limits: BackendLimits): void {
  if (shape.batch > limits.maxBatch) {
    throw new LimitError(
      'q',
      `batch (dim 0) <= ${limits.maxBatch} (the scheduler's shared memory)`,
      `${shape.batch}`,
    );
  }
  if (shape.rowsPerKvHead > limits.maxRowsPerKvHead) {
    throw new LimitError(
      'q',
      `s_q * h_q / h_kv <= ${limits.maxRowsPerKvHead} (combine grid)`,
      `${shape.rowsPerKvHead}`,
    );
  }
  if (shape.numHeadsKv > limits.maxHeadsKv) {
    throw new LimitError(
      'kCache',
      `h_kv <= ${limits.maxHeadsKv} (grid dimension)`,
      `${shape.numHeadsKv}`,
    );
  }
}
