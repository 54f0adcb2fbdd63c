/**
 * Metadata on a GPU: the schedule's two device tensors and the float32 workspace for the partial
 * results of split sequences, sized at metadata time for the worst case (at most one extra split
 * per part: b + numSmParts split rows) so that no decode call allocates and a whole decode step
 * can be captured in a CUDA graph.
 */
import { type MetadataLayout, MlaMetadata } from '../backend/metadata.js';
import { HEAD_DIM_V, METADATA_INTS_PER_PART } from '../config.js';
import type { CudaDevice } from '../cuda/device.js';
import { DeviceTensor } from '../cuda/device-tensor.js';
import type { DevicePointer } from '../cuda/driver.js';

export class CudaMlaMetadata extends MlaMetadata {
  override readonly tileSchedulerMetadata: DeviceTensor;
  override readonly numSplits: DeviceTensor;
  /** [b + numSmParts, h_kv, s_q*h_q/h_kv, 512] float32: split partial outputs. */
  readonly oAccum: DeviceTensor;
  /** [b + numSmParts, h_kv, s_q*h_q/h_kv] float32: their lses. */
  readonly lseAccum: DeviceTensor;
  /** The four buffers' addresses, read once: every decode call passes them to the kernels. */
  readonly pointers: {
    readonly tileSchedulerMetadata: DevicePointer;
    readonly numSplits: DevicePointer;
    readonly oAccum: DevicePointer;
    readonly lseAccum: DevicePointer;
  };

  /** Allocates the schedule and the workspace (uninitialised: the scheduler kernel fills them). */
  constructor(device: CudaDevice, layout: MetadataLayout, numSmParts: number) {
    super(layout, numSmParts);
    const { batch, numHeadsK, numQRowsPerKvHead } = layout;
    const splitRows = batch + numSmParts;
    const allocated: DeviceTensor[] = [];
    const allocate = (dtype: 'int32' | 'float32', shape: number[]) => {
      const tensor = DeviceTensor.empty(device, dtype, shape);
      allocated.push(tensor);
      return tensor;
    };
    try {
      this.tileSchedulerMetadata = allocate('int32', [numSmParts, METADATA_INTS_PER_PART]);
      this.numSplits = allocate('int32', [batch + 1]);
      this.lseAccum = allocate('float32', [splitRows, numHeadsK, numQRowsPerKvHead]);
      this.oAccum = allocate('float32', [splitRows, numHeadsK, numQRowsPerKvHead, HEAD_DIM_V]);
    } catch (error) {
      for (const tensor of allocated) tensor.dispose();
      throw error;
    }
    this.pointers = {
      tileSchedulerMetadata: this.tileSchedulerMetadata.ptr,
      numSplits: this.numSplits.ptr,
      oAccum: this.oAccum.ptr,
      lseAccum: this.lseAccum.ptr,
    };
  }

  protected free(): void {
    this.tileSchedulerMetadata.dispose();
    this.numSplits.dispose();
    this.oAccum.dispose();
    this.lseAccum.dispose();
  }
}
