/**
 * CUDA graphs by stream capture: record a decode step once, replay it with one launch.
 *
 * Capture uses CU_STREAM_CAPTURE_MODE_THREAD_LOCAL. It forbids, on the capturing thread, the
 * calls that are unsafe during capture (synchronous ones such as cuMemAlloc), so a captured call
 * that makes one fails loudly instead of recording a graph that is wrong on replay; that thread
 * is the only one that calls our driver binding. GLOBAL mode would also forbid those calls on
 * other threads of the process, breaking unrelated CUDA users (a runtime-API library on its own
 * thread) for no gain of ours. Stream-ordered allocations are not among them (a graph records
 * them as allocation nodes), so the allocator itself refuses to allocate on a capturing stream
 * (memory.ts): a graph never owns memory of ours.
 */

import { DisposedError } from '../errors.js';
import type { CudaDevice } from './device.js';
import { CU_STREAM_CAPTURE_MODE_THREAD_LOCAL, type Handle } from './driver.js';
import { assertSameDevice } from './errors.js';
import { freeDeferredAllocations } from './memory.js';
import { type CudaStream, setCapturing } from './stream.js';

/**
 * Starts recording the work enqueued on `stream` instead of running it. Until endCapture(),
 * nothing may be allocated on the stream (the graph would own the memory), and memory freed
 * meanwhile is freed once the capture ends (a free would be recorded too).
 */
export function beginCapture(stream: CudaStream): void {
  const handle = stream.handle;
  stream.device.call('cuStreamBeginCapture_v2', (cu) =>
    cu.cuStreamBeginCapture_v2(handle, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
  );
  setCapturing(stream, true);
}

/** Ends the capture begun on `stream` and returns what it recorded. */
export function endCapture(stream: CudaStream): CudaGraph {
  const handle = stream.handle;
  const graph = new BigUint64Array(1);
  try {
    stream.device.call('cuStreamEndCapture', (cu) => cu.cuStreamEndCapture(handle, graph));
  } finally {
    setCapturing(stream, false);
    freeDeferredAllocations();
  }
  return new CudaGraph(stream.device, graph[0]);
}

/**
 * Captures what `record` enqueues on `stream`. If `record` throws, the capture is ended and
 * dropped before the error propagates, so the stream is usable again.
 */
export function captureGraph(stream: CudaStream, record: () => void): CudaGraph {
  beginCapture(stream);
  try {
    record();
  } catch (error) {
    try {
      endCapture(stream).dispose();
    } catch {
      // The capture may already be invalidated; the error from record() is the one to report.
    }
    throw error;
  }
  return endCapture(stream);
}

/** A recorded graph; instantiate() makes it launchable. */
export class CudaGraph {
  readonly device: CudaDevice;
  private readonly graphHandle: Handle;
  private isDisposed = false;

  /** Use endCapture() or captureGraph(). */
  constructor(device: CudaDevice, handle: Handle) {
    this.device = device;
    this.graphHandle = handle;
  }

  get handle(): Handle {
    if (this.isDisposed)
      throw new DisposedError(`a CUDA graph of cuda:${this.device.ordinal} was disposed`);
    return this.graphHandle;
  }

  instantiate(): CudaGraphExec {
    const handle = this.handle;
    const exec = new BigUint64Array(1);
    this.device.call('cuGraphInstantiateWithFlags', (cu) =>
      cu.cuGraphInstantiateWithFlags(exec, handle, 0n),
    );
    return new CudaGraphExec(this.device, exec[0]);
  }

  /** Frees the recorded graph; executables made from it stay valid. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.device.release('cuGraphDestroy', (cu) => cu.cuGraphDestroy(this.graphHandle));
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** An instantiated graph: each launch() enqueues the whole recorded work on a stream. */
export class CudaGraphExec {
  readonly device: CudaDevice;
  private readonly execHandle: Handle;
  private isDisposed = false;

  /** Use CudaGraph.instantiate(). */
  constructor(device: CudaDevice, handle: Handle) {
    this.device = device;
    this.execHandle = handle;
  }

  get handle(): Handle {
    if (this.isDisposed)
      throw new DisposedError(
        `a CUDA graph executable of cuda:${this.device.ordinal} was disposed`,
      );
    return this.execHandle;
  }

  launch(stream: CudaStream = this.device.defaultStream): void {
    assertSameDevice('stream', this.device, stream.device);
    const handle = this.handle;
    const streamHandle = stream.handle;
    this.device.call('cuGraphLaunch', (cu) => cu.cuGraphLaunch(handle, streamHandle));
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.device.release('cuGraphExecDestroy', (cu) => cu.cuGraphExecDestroy(this.execHandle));
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
