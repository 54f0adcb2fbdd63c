/**
 * Metadata on a GPU: the schedule's two device tensors, and the float32 workspace for the
 * partial results of split sequences. The workspace is the one of the stream the metadata was
 * made on (split-workspace.ts), sized at metadata time for the worst case (at most one extra
 * split per part: b + numSmParts split rows) and shared with the other metadata made on that
 * stream: no decode call allocates, a whole decode step can be captured in a CUDA graph, and
 * the natural loop (new metadata every step, never disposed) reuses one workspace.
 */
import { type MetadataLayout, MlaMetadata } from '../backend/metadata.js';
import { METADATA_INTS_PER_PART } from '../config.js';
import type { CudaDevice } from '../cuda/device.js';
import { DeviceTensor } from '../cuda/device-tensor.js';
import type { DevicePointer } from '../cuda/driver.js';
import { partialRows, type SplitWorkspace } from './split-workspace.js';

export class CudaMlaMetadata extends MlaMetadata {
  override readonly tileSchedulerMetadata: DeviceTensor;
  override readonly numSplits: DeviceTensor;
  /** The split workspace of the stream the metadata was made on (not owned: shared). */
  readonly workspace: SplitWorkspace;
  /** Partial rows its schedules can write: b + numSmParts splits, by KV head and query row. */
  readonly partialRows: number;
  /** The schedule's addresses, read once: every decode call passes them to the kernels. */
  readonly pointers: {
    readonly tileSchedulerMetadata: DevicePointer;
    readonly numSplits: DevicePointer;
  };

  /**
   * Allocates the schedule (uninitialised: the scheduler kernel fills it) in the order of the
   * workspace's stream. `workspace` must hold partialRows(layout, numSmParts) rows.
   */
  constructor(
    device: CudaDevice,
    layout: MetadataLayout,
    numSmParts: number,
    workspace: SplitWorkspace,
  ) {
    super(layout, numSmParts);
    this.partialRows = partialRows({ ...layout, numSmParts });
    this.workspace = workspace;
    const stream = workspace.stream;
    this.tileSchedulerMetadata = DeviceTensor.empty(
      device,
      'int32',
      [numSmParts, METADATA_INTS_PER_PART],
      stream,
    );
    try {
      this.numSplits = DeviceTensor.empty(device, 'int32', [layout.batch + 1], stream);
    } catch (error) {
      this.tileSchedulerMetadata.dispose();
      throw error;
    }
    this.pointers = {
      tileSchedulerMetadata: this.tileSchedulerMetadata.ptr,
      numSplits: this.numSplits.ptr,
    };
  }

  /** Frees the schedule in stream order; the shared workspace is freed once nothing uses it. */
  protected free(): void {
    this.tileSchedulerMetadata.dispose();
    this.numSplits.dispose();
  }
}
