/**
 * The CUDA backend: the tile scheduler, decode and combine kernels on one GPU, enqueued on a
 * stream (the device's default stream unless the call names one). Calls return at once; results
 * are read with `await tensor.toHost()`.
 */
import {
  type Backend,
  type CapturedGraph,
  type DecodeCall,
  type DecodeResult,
  type MetadataCall,
  writeSourceElements,
} from '../backend/backend.js';
import type { BackendLimits } from '../backend/limits.js';
import { type MetadataLayout, MetadataRecords, type MlaMetadata } from '../backend/metadata.js';
import { HEAD_DIM_V } from '../config.js';
import { CudaDevice } from '../cuda/device.js';
import { DeviceTensor, uploadHostTensorPreservingLayout } from '../cuda/device-tensor.js';
import { assertSameDevice } from '../cuda/errors.js';
import { CudaEvent } from '../cuda/event.js';
import { type CudaGraphExec, captureGraph } from '../cuda/graph.js';
import { copyHostToDevice, NO_ALLOCATION_WHILE_CAPTURING } from '../cuda/memory.js';
import { probeCuda } from '../cuda/probe.js';
import { CudaStream } from '../cuda/stream.js';
import { DeviceMismatchError, GpuUnavailableError, OptionError } from '../errors.js';
import { checkOptionKeys, describeValue } from '../options.js';
import { fixedOverheadBlocksFor, numSmPartsFor } from '../scheduler.js';
import type { DType } from '../tensor/dtype.js';
import { checkHostTensor, type HostTensor } from '../tensor/host-tensor.js';
import { formatShape, type Tensor } from '../tensor/tensor.js';
import { KernelSet } from './binaries.js';
import { KernelErrorReport } from './error-report.js';
import {
  type DecodeVariant,
  decodeVariantFromEnvironment,
  kernelLimits,
  launchDecode,
  launchMetadata,
} from './launch.js';
import { CudaMlaMetadata } from './metadata.js';
import { partialRows, type SplitWorkspace, SplitWorkspaces } from './split-workspace.js';

const INT32_MAX = 2 ** 31 - 1;
const TIME_OPTION_KEYS: ReadonlySet<string> = new Set(['warmup', 'repeats']);
const CAPTURE_OPTION_KEYS: ReadonlySet<string> = new Set(['stream']);

/**
 * What each captured graph's recorded work reads and writes (tensors, metadata, split
 * workspaces): the graph holds their addresses, so it keeps them from the finalizers that free
 * dropped memory, until it is disposed or dropped itself.
 */
const retainedByGraph = new WeakMap<CapturedGraph, readonly object[]>();

/** A captured decode step: replay() is one cuGraphLaunch on the stream it was captured on. */
class CudaCapturedGraph implements CapturedGraph {
  private readonly exec: CudaGraphExec;
  private readonly stream: CudaStream;

  private readonly onReplay: (stream: CudaStream) => void;

  constructor(
    exec: CudaGraphExec,
    stream: CudaStream,
    retained: readonly object[],
    onReplay: (stream: CudaStream) => void,
  ) {
    this.exec = exec;
    this.stream = stream;
    this.onReplay = onReplay;
    retainedByGraph.set(this, retained);
  }

  replay(): void {
    this.exec.launch(this.stream);
    this.onReplay(this.stream);
  }

  dispose(): void {
    this.exec.dispose();
    retainedByGraph.delete(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export class CudaBackend implements Backend {
  readonly kind = 'cuda';
  readonly description: string;
  readonly device: CudaDevice;
  /** Which decode kernel runs (FLASHMLA_DECODE_KERNEL, read when the backend opens). */
  readonly decodeVariant: DecodeVariant = decodeVariantFromEnvironment();
  readonly kernels: KernelSet;
  readonly limits: BackendLimits;
  private readonly metadata = new MetadataRecords<CudaMlaMetadata>();
  /** The split workspaces of this device, one per stream, shared by the metadata made on it. */
  private readonly workspaces: SplitWorkspaces;
  /** Where the decode kernels report bad values; read at the next wait (error-report.ts). */
  private readonly errorReport: KernelErrorReport;
  /** The stream a captureGraph() in progress records on. */
  private capturing: CudaStream | undefined;
  /** What the capture in progress uses, for the captured graph to keep alive. */
  private captured: object[] = [];
  private static readonly opened = new Map<number, CudaBackend>();

  private constructor(device: CudaDevice, kernels: KernelSet) {
    this.device = device;
    this.kernels = kernels;
    this.workspaces = new SplitWorkspaces(device);
    this.errorReport = new KernelErrorReport(device);
    this.limits = Object.freeze(kernelLimits(kernels.layout.kernels));
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

  getMlaMetadata(call: MetadataCall): MlaMetadata {
    const lengths = this.own('cacheSeqlens', call.cacheSeqlens);
    const numSmParts = this.numSmParts(call.numQRowsPerKvHead, call.numHeadsK);
    const stream = this.streamFor(call.stream);
    if (call.into) {
      const into = this.metadata.find(call.into, call, 'into');
      this.launchScheduler(lengths, into, stream);
      return into;
    }
    this.refuseAllocationWhileCapturing(stream, 'into', 'metadata to recompute into (`into`)');
    const workspace = this.workspaces.for(stream, partialRows({ ...call, numSmParts }));
    const metadata = new CudaMlaMetadata(this.device, call, numSmParts, workspace);
    try {
      this.launchScheduler(lengths, metadata, stream);
    } catch (error) {
      metadata.dispose();
      throw error;
    }
    return this.metadata.add(metadata);
  }

  private launchScheduler(
    lengths: DeviceTensor,
    metadata: CudaMlaMetadata,
    stream: CudaStream,
  ): void {
    lengths.useOn(stream);
    metadata.tileSchedulerMetadata.useOn(stream);
    metadata.numSplits.useOn(stream);
    if (this.capturing !== undefined) this.captured.push(lengths, metadata);
    launchMetadata(this.kernels, stream, {
      cacheSeqlens: lengths.ptr,
      tileSchedulerMetadata: metadata.pointers.tileSchedulerMetadata,
      numSplits: metadata.pointers.numSplits,
      batch: metadata.batch,
      numSmParts: metadata.numSmParts,
      maxSeqlen: INT32_MAX, // the decode kernel clamps to each call's block-table capacity
      fixedOverheadBlocks: fixedOverheadBlocksFor(metadata.numQRowsPerKvHead, metadata.batch),
    });
  }

  decode(call: DecodeCall): DecodeResult<DeviceTensor> {
    const { shape } = call;
    const layout: MetadataLayout = {
      batch: shape.batch,
      numQRowsPerKvHead: shape.rowsPerKvHead,
      numHeadsK: shape.numHeadsKv,
    };
    const metadata = this.metadata.find(call.schedule, layout);
    const stream = this.streamFor(call.stream);
    const workspace = this.workspaceFor(metadata, stream);
    if (!call.out || !call.lse)
      this.refuseAllocationWhileCapturing(stream, 'out', 'preallocated out and lse');
    const q = this.own('q', call.q);
    const kCache = this.own('kCache', call.kCache);
    const blockTable = this.own('blockTable', call.blockTable);
    const cacheSeqlens = this.own('cacheSeqlens', call.cacheSeqlens);
    const out = call.out
      ? this.own('out', call.out)
      : DeviceTensor.empty(
          this.device,
          shape.dtype,
          [shape.batch, shape.seqlenQ, shape.numHeadsQ, HEAD_DIM_V],
          stream,
        );
    let lse: DeviceTensor;
    try {
      lse = call.lse
        ? this.own('lse', call.lse)
        : DeviceTensor.empty(
            this.device,
            'float32',
            [shape.batch, shape.numHeadsQ, shape.seqlenQ],
            stream,
          );
    } catch (error) {
      if (!call.out) out.dispose();
      throw error;
    }
    // Memory allocated in the order of another stream is ordered for this one (a no-op for
    // the usual case: everything on one stream).
    q.useOn(stream);
    kCache.useOn(stream);
    blockTable.useOn(stream);
    cacheSeqlens.useOn(stream);
    metadata.tileSchedulerMetadata.useOn(stream);
    metadata.numSplits.useOn(stream);
    out.useOn(stream);
    lse.useOn(stream);
    if (this.capturing !== undefined)
      this.captured.push(q, kCache, blockTable, cacheSeqlens, metadata, workspace, out, lse);
    launchDecode(this.kernels, stream, {
      variant: this.decodeVariant,
      shape,
      q,
      kCache,
      blockTable,
      cacheSeqlens: cacheSeqlens.ptr,
      tileSchedulerMetadata: metadata.pointers.tileSchedulerMetadata,
      numSplits: metadata.pointers.numSplits,
      numSmParts: metadata.numSmParts,
      out,
      lse: lse.ptr,
      oAccum: workspace.oAccumPtr,
      lseAccum: workspace.lseAccumPtr,
      errors: this.errorReport.pointerFor(stream),
    });
    return { out, lse };
  }

  /**
   * The split workspace a decode call on `stream` uses: the metadata's, made on the same stream;
   * for a call on another stream, that stream's own (decode calls that may run at the same time
   * must not share one), allocated on first use. While a graph is captured nothing may be
   * allocated, so there the stream must already have one large enough.
   */
  private workspaceFor(metadata: CudaMlaMetadata, stream: CudaStream): SplitWorkspace {
    if (metadata.workspace.stream === stream) return metadata.workspace;
    if (stream.capturing) {
      const existing = this.workspaces.existing(stream, metadata.partialRows);
      if (existing !== undefined) return existing;
      throw new OptionError(
        'metadata',
        `metadata made on the capturing stream (getMlaMetadata with { stream } before the capture): its split workspace is that stream's, and ${NO_ALLOCATION_WHILE_CAPTURING}`,
        'metadata made on another stream',
      );
    }
    return this.workspaces.for(stream, metadata.partialRows);
  }

  empty(dtype: DType, shape: readonly number[]): DeviceTensor {
    return DeviceTensor.empty(this.device, dtype, shape);
  }

  /** Copies a host tensor to this GPU, keeping its strides (padding included). */
  upload(tensor: HostTensor): DeviceTensor {
    checkHostTensor('tensor', tensor);
    return uploadHostTensorPreservingLayout(this.device, tensor, this.stream);
  }

  write(target: Tensor, source: HostTensor, stream?: CudaStream): void {
    if (this.capturing !== undefined) {
      // A graph would replay the copy from this host memory as it is then: write before replay().
      throw new OptionError('target', 'a write outside captureGraph', 'a write while capturing');
    }
    const tensor = this.own('target', target);
    checkHostTensor('source', source);
    if (!tensor.isContiguous()) {
      throw new OptionError(
        'target',
        'a contiguous tensor',
        `strides ${formatShape(tensor.strides)}`,
      );
    }
    copyHostToDevice(tensor.storage(), writeSourceElements(tensor, source), this.streamFor(stream));
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
    checkOptionKeys('options', options, TIME_OPTION_KEYS);
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

  captureGraph(record: () => void, options?: { stream?: CudaStream }): CapturedGraph {
    checkOptionKeys('options', options, CAPTURE_OPTION_KEYS);
    const requested = options?.stream;
    if (requested !== undefined) {
      if (!(requested instanceof CudaStream))
        throw new OptionError('stream', 'a CudaStream', describeValue(requested));
      assertSameDevice('stream', this.device, requested.device);
    }
    if (this.capturing !== undefined) {
      throw new OptionError('record', 'one capture at a time', 'a capture begun inside another');
    }
    const stream = requested ?? this.stream;
    this.capturing = stream;
    this.captured = [];
    let exec: CudaGraphExec;
    let retained: object[];
    try {
      const graph = captureGraph(stream, record);
      try {
        exec = graph.instantiate();
      } finally {
        graph.dispose();
      }
    } finally {
      this.capturing = undefined;
      retained = this.captured;
      this.captured = [];
    }
    // A replay runs the recorded decode kernels again: the next wait reads their report.
    return new CudaCapturedGraph(exec, stream, retained, (on) => this.errorReport.pointerFor(on));
  }

  /**
   * The stream a call enqueues on: the one it names, else the backend's; while a graph is being
   * captured, the capturing stream (naming another would run that work now, outside the graph).
   */
  private streamFor(requested: CudaStream | undefined): CudaStream {
    const capturing = this.capturing;
    if (capturing === undefined) return requested ?? this.stream;
    if (requested !== undefined && requested !== capturing) {
      throw new OptionError(
        'stream',
        'the stream being captured, or none, while a graph is captured',
        'another stream',
      );
    }
    return capturing;
  }

  /**
   * Nothing may be allocated on a stream while it captures a graph: the graph would not own the
   * memory, and the allocation would not happen again on replay. The allocator refuses too
   * (cuda/memory.ts); this names the argument that avoids the allocation.
   */
  private refuseAllocationWhileCapturing(
    stream: CudaStream,
    argument: string,
    expected: string,
  ): void {
    if (stream.capturing) {
      throw new OptionError(argument, `${expected}: ${NO_ALLOCATION_WHILE_CAPTURING}`, 'none');
    }
  }

  /** The tensor as a DeviceTensor of this backend's device (the API checked the ordinal). */
  private own(name: string, tensor: Tensor): DeviceTensor {
    if (!(tensor instanceof DeviceTensor) || tensor.cudaDevice !== this.device) {
      throw new DeviceMismatchError(
        name,
        `a DeviceTensor of this cuda:${this.device.ordinal}`,
        tensor instanceof DeviceTensor
          ? `one of a cuda:${tensor.cudaDevice.ordinal} since disposed and reopened`
          : describeValue(tensor),
      );
    }
    return tensor;
  }
}
