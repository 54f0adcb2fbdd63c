/**
 * The float32 workspace of split-KV decode: for every partial row (one split of one sequence,
 * one KV head, one query row) 512 partial outputs and an lse, which the combine kernel merges.
 *
 * One workspace per stream, shared by all the metadata made on that stream: decode calls on one
 * stream run one after another, so they can share it, and the natural loop (new metadata every
 * decode step, never disposed) reuses it instead of allocating megabytes a step. It is sized at
 * metadata time, so a decode call (or a captured graph of one) allocates nothing.
 */
import { HEAD_DIM_V } from '../config.js';
import type { CudaDevice } from '../cuda/device.js';
import { DeviceTensor } from '../cuda/device-tensor.js';
import type { DevicePointer } from '../cuda/driver.js';
import type { CudaStream } from '../cuda/stream.js';

/** One stream's workspace: flat float32 buffers of `capacityRows` partial rows. */
export class SplitWorkspace {
  readonly stream: CudaStream;
  readonly capacityRows: number;
  /** [capacityRows, 512] float32. */
  readonly oAccum: DeviceTensor;
  /** [capacityRows] float32. */
  readonly lseAccum: DeviceTensor;
  /** The two buffers' addresses, read once: every decode call passes them to the kernels. */
  readonly oAccumPtr: DevicePointer;
  readonly lseAccumPtr: DevicePointer;

  constructor(device: CudaDevice, stream: CudaStream, capacityRows: number) {
    this.stream = stream;
    this.capacityRows = capacityRows;
    this.lseAccum = DeviceTensor.empty(device, 'float32', [capacityRows], stream);
    try {
      this.oAccum = DeviceTensor.empty(device, 'float32', [capacityRows, HEAD_DIM_V], stream);
    } catch (error) {
      this.lseAccum.dispose();
      throw error;
    }
    this.oAccumPtr = this.oAccum.ptr;
    this.lseAccumPtr = this.lseAccum.ptr;
  }
}

/** Partial rows a schedule can write: at most one extra split per part, so b + numSmParts splits. */
export function partialRows(metadata: {
  batch: number;
  numSmParts: number;
  numHeadsK: number;
  numQRowsPerKvHead: number;
}): number {
  return (metadata.batch + metadata.numSmParts) * metadata.numHeadsK * metadata.numQRowsPerKvHead;
}

/**
 * How much a workspace grows past what is asked when it must grow, so that a batch that grows a
 * little every step reallocates rarely.
 */
const GROWTH = 1.5;

/** The workspaces of one device, by stream. */
export class SplitWorkspaces {
  private readonly device: CudaDevice;
  /** Weakly keyed: a dropped stream's workspace goes with it. */
  private readonly byStream = new WeakMap<CudaStream, SplitWorkspace>();

  constructor(device: CudaDevice) {
    this.device = device;
  }

  /** The workspace of `stream` if it has one of at least `rows` partial rows (allocates nothing). */
  existing(stream: CudaStream, rows: number): SplitWorkspace | undefined {
    const current = this.byStream.get(stream);
    return current !== undefined && current.capacityRows >= rows ? current : undefined;
  }

  /**
   * The workspace of `stream`, replaced by a larger one if it holds fewer than `rows` partial
   * rows. A replaced workspace lives on while something that uses it does (metadata made with
   * it, a captured graph that recorded its address), then its finalizers free it.
   */
  for(stream: CudaStream, rows: number): SplitWorkspace {
    const current = this.byStream.get(stream);
    if (current !== undefined && current.capacityRows >= rows) return current;
    const capacity = Math.max(rows, Math.ceil((current?.capacityRows ?? 0) * GROWTH));
    const grown = new SplitWorkspace(this.device, stream, capacity);
    this.byStream.set(stream, grown);
    return grown;
  }
}
