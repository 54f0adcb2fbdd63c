/**
 * What getMlaMetadata returns: the tile schedule (where it lives follows cacheSeqlens) and what
 * the backend that made it needs besides (the GPU's split workspace). Each backend has its own
 * subclass; flashMlaWithKvcache takes the object itself, or FlashMLA's two tensors, which the
 * backend that made them recognises.
 */
import { MetadataMismatchError } from '../errors.js';
import { formatShape, type Tensor } from '../tensor/tensor.js';

/** FlashMLA's form of the metadata: its two tensors. */
export interface MetadataTensors {
  /** [numSmParts, 8] int32: per part {beginBatch, beginToken, endBatch, endToken, beginSplit, 0, 0, 0}. */
  readonly tileSchedulerMetadata: Tensor;
  /** [b + 1] int32: prefix sums of the number of splits of each sequence. */
  readonly numSplits: Tensor;
}

/** The batch size and head layout a schedule is made for. */
export interface MetadataLayout {
  readonly batch: number;
  readonly numQRowsPerKvHead: number;
  readonly numHeadsK: number;
}

export abstract class MlaMetadata implements MetadataTensors, MetadataLayout {
  abstract readonly tileSchedulerMetadata: Tensor;
  abstract readonly numSplits: Tensor;
  readonly batch: number;
  readonly numQRowsPerKvHead: number;
  readonly numHeadsK: number;
  readonly numSmParts: number;
  private disposed = false;

  protected constructor(layout: MetadataLayout, numSmParts: number) {
    this.batch = layout.batch;
    this.numQRowsPerKvHead = layout.numQRowsPerKvHead;
    this.numHeadsK = layout.numHeadsK;
    this.numSmParts = numSmParts;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Frees what the metadata holds on its device, in stream order (nothing on the host);
   * idempotent. Metadata the program drops without disposing is freed by the finalizers of its
   * device tensors.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.free();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  protected abstract free(): void;

  /**
   * Throws MetadataMismatchError unless this metadata can serve a call of `layout`: not
   * disposed, made for the same batch size (numSplits has b + 1 entries) and head layout. The
   * error names `argument`, or for FlashMLA's form the tensor that shows the mismatch.
   */
  checkFits(layout: MetadataLayout, argument?: string): void {
    if (this.disposed) {
      throw new MetadataMismatchError(
        argument ?? 'tileSchedulerMetadata',
        'metadata that is not disposed',
        'disposed metadata',
      );
    }
    if (this.batch !== layout.batch) {
      throw new MetadataMismatchError(
        argument ?? 'numSplits',
        `metadata for b = ${layout.batch} (numSplits with b + 1 entries)`,
        `numSplits of shape ${formatShape(this.numSplits.shape)}, made for b = ${this.batch}`,
      );
    }
    if (
      this.numHeadsK !== layout.numHeadsK ||
      this.numQRowsPerKvHead !== layout.numQRowsPerKvHead
    ) {
      throw new MetadataMismatchError(
        argument ?? 'tileSchedulerMetadata',
        `metadata for h_kv = ${layout.numHeadsK} and s_q*h_q/h_kv = ${layout.numQRowsPerKvHead}`,
        `metadata made for h_kv = ${this.numHeadsK} and s_q*h_q/h_kv = ${this.numQRowsPerKvHead}`,
      );
    }
  }
}

/**
 * The metadata one backend made, by schedule tensor: how a backend recognises its own metadata
 * when a call passes FlashMLA's two tensors, typed as the backend's own subclass.
 */
export class MetadataRecords<M extends MlaMetadata> {
  private readonly made = new WeakMap<Tensor, M>();

  add(metadata: M): M {
    this.made.set(metadata.tileSchedulerMetadata, metadata);
    return metadata;
  }

  /**
   * The metadata behind `schedule` (the object, or its two tensors), checked to fit `layout`.
   * Throws MetadataMismatchError, naming `argument` (default: the metadata object, or the
   * tensor at fault), if this backend did not make it or it does not fit.
   */
  find(schedule: MlaMetadata | MetadataTensors, layout: MetadataLayout, argument?: string): M {
    const isObject = schedule instanceof MlaMetadata;
    const name = argument ?? (isObject ? 'metadata' : undefined);
    const record = this.made.get(schedule.tileSchedulerMetadata);
    if (record === undefined) {
      throw new MetadataMismatchError(
        name ?? 'tileSchedulerMetadata',
        'metadata that getMlaMetadata made for these tensors',
        isObject ? 'metadata made for another device' : 'a tensor getMlaMetadata did not make',
      );
    }
    if (schedule.numSplits !== record.numSplits) {
      throw new MetadataMismatchError(
        name ?? 'numSplits',
        'the numSplits made together with tileSchedulerMetadata',
        'another tensor',
      );
    }
    record.checkFits(layout, name);
    return record;
  }
}
