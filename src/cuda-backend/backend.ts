/**
 * The CUDA backend: the tile scheduler, decode and combine kernels on one GPU, enqueued on a
 * stream (the device's default stream unless the call names one). Calls return at once; results
 * are read with `await tensor.toHost()`.
 */

import { checkDecodeValues } from '../api/validate.js';
import type { Backend, DecodeCall, DecodeResult } from '../backend/backend.js';
import { MlaMetadata } from '../backend/metadata.js';
import { HEAD_DIM_V, METADATA_INTS_PER_PART } from '../config.js';
import { CudaDevice } from '../cuda/device.js';
import { DeviceTensor, uploadHostTensorPreservingLayout } from '../cuda/device-tensor.js';
import { CudaEvent } from '../cuda/event.js';
import { probeCuda } from '../cuda/probe.js';
import type { CudaStream } from '../cuda/stream.js';
import { DeviceMismatchError, GpuUnavailableError, LimitError, StrideError } from '../errors.js';
import { numSmPartsFor } from '../scheduler.js';
import type { DType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { KernelSet } from './binaries.js';
import { launchDecode, launchMetadata, maxRowsPerKvHead } from './launch.js';

const INT32_MAX = 2 ** 31 - 1;

/** The float32 partials of split sequences, sized for the worst case at metadata time. */
class SplitWorkspace {
  readonly oAccum: DeviceTensor;
  readonly lseAccum: DeviceTensor;

  constructor(device: CudaDevice, splitRows: number, numHeadsK: number, numQRowsPerKvHead: number) {
    this.lseAccum = DeviceTensor.empty(device, 'float32', [
      splitRows,
      numHeadsK,
      numQRowsPerKvHead,
    ]);
    try {
      this.oAccum = DeviceTensor.empty(device, 'float32', [
        splitRows,
        numHeadsK,
        numQRowsPerKvHead,
        HEAD_DIM_V,
      ]);
    } catch (error) {
      this.lseAccum.dispose();
      throw error;
    }
  }

  dispose(): void {
    this.oAccum.dispose();
    this.lseAccum.dispose();
  }
}

export class CudaBackend implements Backend {
  readonly kind = 'cuda';
  readonly description: string;
  readonly device: CudaDevice;
  readonly kernels: KernelSet;
  private static readonly opened = new Map<number, CudaBackend>();

  private constructor(device: CudaDevice, kernels: KernelSet) {
    this.device = device;
    this.kernels = kernels;
    this.description = `cuda:${device.ordinal} ${device.name} (sm_${device.computeCapability.major}${device.computeCapability.minor}, ${device.multiProcessorCount} SMs)`;
  }

  /** The backend of device `ordinal`, or GpuUnavailableError saying why it cannot run. */
  static open(ordinal = 0): CudaBackend {
    const existing = CudaBackend.opened.get(ordinal);
    if (existing && !existing.device.disposed) return existing;
    const probe = probeCuda(ordinal);
    if (!probe.ok) throw new GpuUnavailableError(probe.reason, probe.fix);
    const device = CudaDevice.open(ordinal);
    const backend = new CudaBackend(device, KernelSet.for(device));
    CudaBackend.opened.set(ordinal, backend);
    return backend;
  }

  get stream(): CudaStream {
    return this.device.defaultStream;
  }

  numSmParts(numQRowsPerKvHead: number, numHeadsK: number): number {
    return numSmPartsFor(this.device.multiProcessorCount, numQRowsPerKvHead, numHeadsK);
  }

  getMlaMetadata(
    cacheSeqlens: Tensor,
    numQRowsPerKvHead: number,
    numHeadsK: number,
    stream?: CudaStream,
    into?: MlaMetadata,
  ): MlaMetadata {
    const lengths = this.own('cacheSeqlens', cacheSeqlens);
    const batch = lengths.shape[0];
    const numSmParts = this.numSmParts(numQRowsPerKvHead, numHeadsK);
    if (into) {
      this.launchScheduler(lengths, into.tileSchedulerMetadata, into.numSplits, numSmParts, stream);
      return into;
    }
    const allocated: { dispose(): void }[] = [];
    try {
      const tileSchedulerMetadata = DeviceTensor.empty(this.device, 'int32', [
        numSmParts,
        METADATA_INTS_PER_PART,
      ]);
      allocated.push(tileSchedulerMetadata);
      const numSplits = DeviceTensor.empty(this.device, 'int32', [batch + 1]);
      allocated.push(numSplits);
      // At most one extra split per part: b + numSmParts split rows cover any schedule.
      const workspace = new SplitWorkspace(
        this.device,
        batch + numSmParts,
        numHeadsK,
        numQRowsPerKvHead,
      );
      allocated.push(workspace);
      this.launchScheduler(lengths, tileSchedulerMetadata, numSplits, numSmParts, stream);
      return new MlaMetadata({
        tileSchedulerMetadata,
        numSplits,
        batch,
        numQRowsPerKvHead,
        numHeadsK,
        numSmParts,
        workspace,
      });
    } catch (error) {
      for (const resource of allocated) resource.dispose();
      throw error;
    }
  }

  private launchScheduler(
    lengths: DeviceTensor,
    metadata: Tensor,
    numSplits: Tensor,
    numSmParts: number,
    stream?: CudaStream,
  ): void {
    launchMetadata(this.kernels, stream ?? this.stream, {
      cacheSeqlens: lengths.ptr,
      tileSchedulerMetadata: this.own('tileSchedulerMetadata', metadata).ptr,
      numSplits: this.own('numSplits', numSplits).ptr,
      batch: lengths.shape[0],
      numSmParts,
      maxSeqlen: INT32_MAX, // the decode kernel clamps to each call's block-table capacity
    });
  }

  decode(call: DecodeCall): DecodeResult<DeviceTensor> {
    const { shape, metadata } = call;
    const q = this.own('q', call.q);
    const kCache = this.own('kCache', call.kCache);
    const blockTable = this.own('blockTable', call.blockTable);
    const cacheSeqlens = this.own('cacheSeqlens', call.cacheSeqlens);
    for (const [name, tensor] of [
      ['q', q],
      ['kCache', kCache],
    ] as const) {
      if (tensor.ptr % 16n !== 0n) {
        throw new StrideError(
          name,
          'a 16-byte aligned address (16-byte loads and TMA need it)',
          `0x${tensor.ptr.toString(16)}`,
        );
      }
    }
    if (shape.rowsPerKvHead > maxRowsPerKvHead(this.kernels, shape.dtype)) {
      throw new LimitError(
        'q',
        `s_q * h_q / h_kv <= ${maxRowsPerKvHead(this.kernels, shape.dtype)} (combine grid)`,
        `${shape.rowsPerKvHead}`,
      );
    }
    if (call.validateValues)
      checkDecodeValues(blockTable.toHostSync(), cacheSeqlens.toHostSync(), shape);
    const workspace = metadata.workspace as SplitWorkspace;
    const out = call.out
      ? this.own('out', call.out)
      : DeviceTensor.empty(this.device, shape.dtype, [
          shape.batch,
          shape.seqlenQ,
          shape.numHeadsQ,
          HEAD_DIM_V,
        ]);
    let lse: DeviceTensor;
    try {
      lse = call.lse
        ? this.own('lse', call.lse)
        : DeviceTensor.empty(this.device, 'float32', [shape.batch, shape.numHeadsQ, shape.seqlenQ]);
    } catch (error) {
      if (!call.out) out.dispose();
      throw error;
    }
    launchDecode(this.kernels, call.stream ?? this.stream, {
      shape,
      q,
      kCache,
      blockTable,
      cacheSeqlens: cacheSeqlens.ptr,
      tileSchedulerMetadata: this.own('tileSchedulerMetadata', metadata.tileSchedulerMetadata).ptr,
      numSplits: this.own('numSplits', metadata.numSplits).ptr,
      numSmParts: metadata.numSmParts,
      out,
      lse: lse.ptr,
      oAccum: workspace.oAccum.ptr,
      lseAccum: workspace.lseAccum.ptr,
    });
    return { out, lse };
  }

  empty(dtype: DType, shape: readonly number[]): DeviceTensor {
    return DeviceTensor.empty(this.device, dtype, shape);
  }

  /** Copies a host tensor to this GPU, keeping its strides (padding included). */
  upload(tensor: HostTensor): DeviceTensor {
    return uploadHostTensorPreservingLayout(this.device, tensor, this.stream);
  }

  wrap(
    ptr: bigint,
    dtype: DType,
    shape: readonly number[],
    strides?: readonly number[],
  ): DeviceTensor {
    return DeviceTensor.wrap(this.device, ptr, dtype, shape, strides);
  }

  synchronize(): void {
    this.stream.synchronize();
  }

  time(work: () => void, options: { warmup: number; repeats: number }): number[] {
    for (let i = 0; i < options.warmup; i++) work();
    const events = Array.from({ length: options.repeats + 1 }, () =>
      CudaEvent.create(this.device, { timing: true }),
    );
    try {
      events[0].record(this.stream);
      for (let i = 0; i < options.repeats; i++) {
        work();
        events[i + 1].record(this.stream);
      }
      events[options.repeats].synchronize();
      return events.slice(1).map((end, i) => CudaEvent.elapsedMs(events[i], end));
    } finally {
      for (const event of events) event.dispose();
    }
  }

  /** The tensor as a DeviceTensor of this backend's device (the API checked the ordinal). */
  private own(name: string, tensor: Tensor): DeviceTensor {
    if (!(tensor instanceof DeviceTensor) || tensor.cudaDevice !== this.device) {
      throw new DeviceMismatchError(
        name,
        `a DeviceTensor on cuda:${this.device.ordinal}`,
        String(tensor),
      );
    }
    return tensor;
  }
}
