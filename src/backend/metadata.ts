/**
 * What getMlaMetadata returns: the tile schedule (where it lives follows cacheSeqlens) and, on
 * the GPU, the float32 workspace for split partials, sized for the worst case so that no decode
 * call allocates (a whole step can be captured in a CUDA graph). flashMlaWithKvcache finds the
 * record from the tileSchedulerMetadata tensor it is given and checks it fits the call.
 */
import { MetadataMismatchError } from '../errors.js';
import { formatShape, type Tensor } from '../tensor/tensor.js';

/** A resource the metadata owns besides its two tensors (the GPU split workspace). */
export interface OwnedResource {
  dispose(): void;
}

export class MlaMetadata {
  /** [numSmParts, 8] int32: per part {beginBatch, beginToken, endBatch, endToken, beginSplit, 0, 0, 0}. */
  readonly tileSchedulerMetadata: Tensor;
  /** [b + 1] int32: prefix sums of the number of splits of each sequence. */
  readonly numSplits: Tensor;
  readonly batch: number;
  readonly numQRowsPerKvHead: number;
  readonly numHeadsK: number;
  readonly numSmParts: number;
  readonly workspace: OwnedResource | null;
  private disposed = false;

  constructor(fields: {
    tileSchedulerMetadata: Tensor;
    numSplits: Tensor;
    batch: number;
    numQRowsPerKvHead: number;
    numHeadsK: number;
    numSmParts: number;
    workspace: OwnedResource | null;
  }) {
    this.tileSchedulerMetadata = fields.tileSchedulerMetadata;
    this.numSplits = fields.numSplits;
    this.batch = fields.batch;
    this.numQRowsPerKvHead = fields.numQRowsPerKvHead;
    this.numHeadsK = fields.numHeadsK;
    this.numSmParts = fields.numSmParts;
    this.workspace = fields.workspace;
    records.set(this.tileSchedulerMetadata, this);
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Frees the device memory of the schedule and workspace (nothing to free on the host). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const resource of [this.tileSchedulerMetadata, this.numSplits, this.workspace]) {
      (resource as Partial<OwnedResource> | null)?.dispose?.();
    }
  }
}

const records = new WeakMap<Tensor, MlaMetadata>();

/**
 * The metadata record behind a (tileSchedulerMetadata, numSplits) pair, checked against the
 * call it is used for: same batch, same head layout, and the pair made together.
 */
export function metadataFor(
  tileSchedulerMetadata: unknown,
  numSplits: unknown,
  call: { batch: number; numQRowsPerKvHead: number; numHeadsK: number },
): MlaMetadata {
  const record = records.get(tileSchedulerMetadata as Tensor);
  if (!record) {
    throw new MetadataMismatchError(
      'tileSchedulerMetadata',
      'the tileSchedulerMetadata returned by getMlaMetadata',
      'a tensor getMlaMetadata did not make',
    );
  }
  if (record.isDisposed) {
    throw new MetadataMismatchError(
      'tileSchedulerMetadata',
      'metadata that is not disposed',
      'disposed metadata',
    );
  }
  if (numSplits !== record.numSplits) {
    throw new MetadataMismatchError(
      'numSplits',
      'the numSplits made together with tileSchedulerMetadata',
      'another tensor',
    );
  }
  if (record.numSplits.shape[0] !== call.batch + 1) {
    throw new MetadataMismatchError(
      'numSplits',
      `b + 1 = ${call.batch + 1} entries (metadata for this batch size)`,
      `shape ${formatShape(record.numSplits.shape)}, made for b = ${record.batch}`,
    );
  }
  if (record.numHeadsK !== call.numHeadsK || record.numQRowsPerKvHead !== call.numQRowsPerKvHead) {
    throw new MetadataMismatchError(
      'tileSchedulerMetadata',
      `metadata for h_kv = ${call.numHeadsK} and s_q*h_q/h_kv = ${call.numQRowsPerKvHead}`,
      `metadata made for h_kv = ${record.numHeadsK} and s_q*h_q/h_kv = ${record.numQRowsPerKvHead}`,
    );
  }
  return record;
}
