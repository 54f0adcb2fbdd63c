import { DisposedError } from '../errors.js';
import { checkOptionKeys } from '../options.js';
import type { CudaDevice } from './device.js';
import { CU_STREAM_DEFAULT, CU_STREAM_NON_BLOCKING, type Handle } from './driver.js';
import { assertSameDevice } from './errors.js';
import { CudaEvent } from './event.js';

export interface StreamOptions {
  /**
   * Do not order this stream with the legacy NULL stream (CU_STREAM_NON_BLOCKING). Default
   * false: work that other libraries put on the legacy stream stays ordered with ours.
   */
  nonBlocking?: boolean;
}

const STREAM_OPTION_KEYS: ReadonlySet<string> = new Set<keyof StreamOptions>(['nonBlocking']);

/** Streams that a graph capture begun by beginCapture() is recording now (graph.ts keeps it). */
const capturingStreams = new Set<CudaStream>();

/** Records that `stream` started (true) or stopped (false) capturing a graph. */
export function setCapturing(stream: CudaStream, capturing: boolean): void {
  if (capturing) capturingStreams.add(stream);
  else capturingStreams.delete(stream);
}

/** Whether any stream of the process is capturing a graph: device-wide waits must not run then. */
export function anyStreamCapturing(): boolean {
  return capturingStreams.size > 0;
}

/**
 * A CUDA stream: work enqueued on it runs in order. Launches, copies and fills take one and
 * return at once; synchronize() blocks until it drains, wait() resolves when the work enqueued so
 * far is done without blocking the event loop.
 *
 * Host memory that an enqueued copy reads or writes is kept referenced here (keepAlive) until a
 * synchronize(), a query() that finds the stream idle, or a wait() shows the copy is done.
 */
export class CudaStream {
  readonly device: CudaDevice;
  private readonly streamHandle: Handle;
  private isDisposed = false;
  /** Host views of enqueued copies, in enqueue order, each with its enqueue number. */
  private hostViews: { sequence: number; view: ArrayBufferView }[] = [];
  private nextSequence = 0;

  private constructor(device: CudaDevice, handle: Handle) {
    this.device = device;
    this.streamHandle = handle;
  }

  static create(device: CudaDevice, options: StreamOptions = {}): CudaStream {
    checkOptionKeys('options', options, STREAM_OPTION_KEYS);
    const handle = new BigUint64Array(1);
    const flags = options.nonBlocking === true ? CU_STREAM_NON_BLOCKING : CU_STREAM_DEFAULT;
    device.call('cuStreamCreate', (cu) => cu.cuStreamCreate(handle, flags));
    return new CudaStream(device, handle[0]);
  }

  /** The CUstream, for launches. */
  get handle(): Handle {
    if (this.isDisposed)
      throw new DisposedError(`a CUDA stream of cuda:${this.device.ordinal} was disposed`);
    return this.streamHandle;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** True while a graph capture (beginCapture) records this stream's work instead of running it. */
  get capturing(): boolean {
    return capturingStreams.has(this);
  }

  /** Blocks until all work enqueued on the stream is done. */
  synchronize(): void {
    const handle = this.handle;
    this.device.call('cuStreamSynchronize', (cu) => cu.cuStreamSynchronize(handle));
    this.hostViews = [];
    this.device.afterWait(this);
  }

  /** True when all work enqueued so far is done. */
  query(): boolean {
    const handle = this.handle;
    const idle = this.device.query('cuStreamQuery', (cu) => cu.cuStreamQuery(handle));
    if (idle) {
      this.hostViews = [];
      this.device.afterWait(this);
    }
    return idle;
  }

  /** Resolves when the work enqueued before this call is done; the event loop keeps running. */
  async wait(): Promise<void> {
    const mark = this.nextSequence;
    const event = CudaEvent.create(this.device, { timing: false });
    try {
      event.record(this);
      await event.wait();
    } finally {
      event.dispose();
    }
    while (this.hostViews.length > 0 && this.hostViews[0].sequence < mark) this.hostViews.shift();
    this.device.afterWait(this);
  }

  /** Makes work enqueued on this stream from now on wait until `event` has completed. */
  waitFor(event: CudaEvent): void {
    assertSameDevice('event', this.device, event.device);
    const handle = this.handle;
    const eventHandle = event.handle;
    this.device.call('cuStreamWaitEvent', (cu) => cu.cuStreamWaitEvent(handle, eventHandle, 0));
  }

  /** Keeps `view` referenced until work enqueued so far on this stream is known to be done. */
  keepAlive(view: ArrayBufferView): void {
    this.hostViews.push({ sequence: this.nextSequence++, view });
  }

  /** Destroys the stream; work already enqueued on it still runs to completion. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.device.release('cuStreamDestroy_v2', (cu) => cu.cuStreamDestroy_v2(this.streamHandle));
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
