/**
 * The CPU backend: the split-and-combine algorithm of the GPU, run on the host in float64. It
 * schedules for an H100's SM count and keeps the Hopper kernels' limits, so that it cuts work
 * and refuses shapes the way the GPU does.
 */
import {
  type Backend,
  type CapturedGraph,
  type DecodeCall,
  type DecodeResult,
  type MetadataCall,
  writeSourceElements,
} from '../backend/backend.js';
import { HOPPER_KERNEL_LIMITS } from '../backend/limits.js';
import { type MetadataLayout, MetadataRecords, MlaMetadata } from '../backend/metadata.js';
import { CPU_NOMINAL_SM_COUNT, HEAD_DIM_V, METADATA_INTS_PER_PART } from '../config.js';
import type { CudaStream } from '../cuda/stream.js';
import { DisposedError, MetadataMismatchError, OptionError } from '../errors.js';
import { checkOptionKeys } from '../options.js';
import {
  computeTileSchedule,
  findStalePart,
  fixedOverheadBlocksFor,
  numSmPartsFor,
} from '../scheduler.js';
import type { DType } from '../tensor/dtype.js';
import { checkHostTensor, HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { cpuDecode } from './split-decode.js';

/** Metadata on the host: the schedule's two tensors, nothing else. */
class CpuMlaMetadata extends MlaMetadata {
  override readonly tileSchedulerMetadata: HostTensor;
  override readonly numSplits: HostTensor;

  constructor(
    layout: MetadataLayout,
    numSmParts: number,
    schedule: { tileSchedulerMetadata: Int32Array; numSplits: Int32Array },
  ) {
    super(layout, numSmParts);
    this.tileSchedulerMetadata = new HostTensor('int32', schedule.tileSchedulerMetadata, [
      numSmParts,
      METADATA_INTS_PER_PART,
    ]);
    this.numSplits = new HostTensor('int32', schedule.numSplits, [layout.batch + 1]);
  }

  protected free(): void {}
}

const TIME_OPTION_KEYS: ReadonlySet<string> = new Set(['warmup', 'repeats']);
const CAPTURE_OPTION_KEYS: ReadonlySet<string> = new Set(['stream']);

class CpuBackend implements Backend {
  readonly kind = 'cpu';
  readonly description = 'cpu (split-KV decode in float64 on the host)';
  readonly limits = HOPPER_KERNEL_LIMITS;
  private readonly metadata = new MetadataRecords<CpuMlaMetadata>();

  numSmParts(numQRowsPerKvHead: number, numHeadsK: number): number {
    return numSmPartsFor(CPU_NOMINAL_SM_COUNT, numQRowsPerKvHead, numHeadsK);
  }

  getMlaMetadata(call: MetadataCall): MlaMetadata {
    const lengths = (call.cacheSeqlens as HostTensor).contiguous().data as Int32Array;
    const numSmParts = this.numSmParts(call.numQRowsPerKvHead, call.numHeadsK);
    const schedule = computeTileSchedule(
      lengths,
      numSmParts,
      undefined,
      fixedOverheadBlocksFor(call.numQRowsPerKvHead, call.batch),
    );
    if (call.into) {
      const into = this.metadata.find(call.into, call, 'into');
      into.tileSchedulerMetadata.data.set(schedule.tileSchedulerMetadata);
      into.numSplits.data.set(schedule.numSplits);
      return into;
    }
    return this.metadata.add(new CpuMlaMetadata(call, numSmParts, schedule));
  }

  decode(call: DecodeCall): DecodeResult<HostTensor> {
    const { shape } = call;
    const metadata = this.metadata.find(call.schedule, {
      batch: shape.batch,
      numQRowsPerKvHead: shape.rowsPerKvHead,
      numHeadsK: shape.numHeadsKv,
    });
    const stale = findStalePart(
      metadata.tileSchedulerMetadata.data,
      metadata.numSmParts,
      (call.cacheSeqlens as HostTensor).contiguous().data,
      metadata.numSplits.data,
    );
    if (stale) {
      throw new MetadataMismatchError(
        'tileSchedulerMetadata',
        'a schedule made by getMlaMetadata for these cacheSeqlens (recompute it each decode step)',
        `part ${stale.part} (from sequence ${stale.batch}) made for other lengths, or edited`,
      );
    }
    const out =
      (call.out as HostTensor | undefined) ??
      HostTensor.zeros(shape.dtype, [shape.batch, shape.seqlenQ, shape.numHeadsQ, HEAD_DIM_V]);
    const lse =
      (call.lse as HostTensor | undefined) ??
      HostTensor.zeros('float32', [shape.batch, shape.numHeadsQ, shape.seqlenQ]);
    cpuDecode(
      {
        q: call.q as HostTensor,
        kCache: call.kCache as HostTensor,
        blockTable: call.blockTable as HostTensor,
        cacheSeqlens: call.cacheSeqlens as HostTensor,
        softmaxScale: shape.softmaxScale,
        causal: shape.causal,
      },
      {
        tileSchedulerMetadata: metadata.tileSchedulerMetadata.data as Int32Array,
        numSplits: metadata.numSplits.data as Int32Array,
        numSmParts: metadata.numSmParts,
      },
      { out, lse },
    );
    return { out, lse };
  }

  empty(dtype: DType, shape: readonly number[]): HostTensor {
    return HostTensor.zeros(dtype, shape);
  }

  upload(tensor: HostTensor): HostTensor {
    checkHostTensor('tensor', tensor);
    return tensor;
  }

  write(target: Tensor, source: HostTensor): void {
    if (!(target instanceof HostTensor) || !target.isContiguous()) {
      throw new OptionError('target', 'a contiguous HostTensor', String(target));
    }
    checkHostTensor('source', source);
    target.data.set(writeSourceElements(target, source), target.offset);
  }

  wrap(ptr: bigint): never {
    throw new OptionError(
      'ptr',
      'a backend with device memory (cuda) to wrap a device pointer',
      `0x${ptr.toString(16)} on the cpu backend`,
    );
  }

  synchronize(): void {}

  time(work: () => void, options: { warmup: number; repeats: number }): number[] {
    checkOptionKeys('options', options, TIME_OPTION_KEYS);
    for (let i = 0; i < options.warmup; i++) work();
    const times: number[] = [];
    for (let i = 0; i < options.repeats; i++) {
      const start = performance.now();
      work();
      times.push(performance.now() - start);
    }
    return times;
  }

  /** On the host there is nothing to record: replay() runs `record` again. */
  captureGraph(record: () => void, options?: { stream?: CudaStream }): CapturedGraph {
    checkOptionKeys('options', options, CAPTURE_OPTION_KEYS);
    let disposed = false;
    return {
      replay: () => {
        if (disposed) throw new DisposedError('a captured graph of the cpu backend was disposed');
        record();
      },
      dispose: () => {
        disposed = true;
      },
      [Symbol.dispose]: () => {
        disposed = true;
      },
    };
  }
}

export const cpuBackend: Backend = new CpuBackend();
