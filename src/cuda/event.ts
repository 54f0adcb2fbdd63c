import { DisposedError, OptionError } from '../errors.js';
import { checkOptionKeys } from '../options.js';
import type { CudaDevice } from './device.js';
import { CU_EVENT_DEFAULT, CU_EVENT_DISABLE_TIMING, type Handle } from './driver.js';
import { assertSameDevice } from './errors.js';
import { pollUntil } from './poll.js';
import type { CudaStream } from './stream.js';

export interface EventOptions {
  /** Record timestamps so that elapsedMs() works (default true); off is cheaper to record. */
  timing?: boolean;
}

const EVENT_OPTION_KEYS: ReadonlySet<string> = new Set<keyof EventOptions>(['timing']);

/** A CUDA event: a marker in a stream, for waiting and timing. */
export class CudaEvent {
  readonly device: CudaDevice;
  readonly timing: boolean;
  private readonly eventHandle: Handle;
  private isDisposed = false;

  private constructor(device: CudaDevice, handle: Handle, timing: boolean) {
    this.device = device;
    this.eventHandle = handle;
    this.timing = timing;
  }

  static create(device: CudaDevice, options: EventOptions = {}): CudaEvent {
    checkOptionKeys('options', options, EVENT_OPTION_KEYS);
    const timing = options.timing ?? true;
    const handle = new BigUint64Array(1);
    const flags = timing ? CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING;
    device.call('cuEventCreate', (cu) => cu.cuEventCreate(handle, flags));
    return new CudaEvent(device, handle[0], timing);
  }

  /**
   * Milliseconds between two recorded timing events (resolution about half a microsecond).
   * Both must have completed.
   */
  static elapsedMs(start: CudaEvent, end: CudaEvent): number {
    assertSameDevice('end', start.device, end.device);
    for (const [argument, event] of [
      ['start', start],
      ['end', end],
    ] as const) {
      if (!event.timing)
        throw new OptionError(argument, 'an event created with timing', 'timing: false');
    }
    const milliseconds = new Float32Array(1);
    const startHandle = start.handle;
    const endHandle = end.handle;
    start.device.call('cuEventElapsedTime_v2', (cu) =>
      cu.cuEventElapsedTime_v2(milliseconds, startHandle, endHandle),
    );
    return milliseconds[0];
  }

  get handle(): Handle {
    if (this.isDisposed)
      throw new DisposedError(`a CUDA event of cuda:${this.device.ordinal} was disposed`);
    return this.eventHandle;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Marks the point in `stream` (default: the device's default stream) reached so far. */
  record(stream: CudaStream = this.device.defaultStream): void {
    assertSameDevice('stream', this.device, stream.device);
    const handle = this.handle;
    const streamHandle = stream.handle;
    this.device.call('cuEventRecord', (cu) => cu.cuEventRecord(handle, streamHandle));
  }

  /** Blocks until the recorded work is done. */
  synchronize(): void {
    const handle = this.handle;
    this.device.call('cuEventSynchronize', (cu) => cu.cuEventSynchronize(handle));
  }

  /** True when the recorded work is done (or the event was never recorded). */
  query(): boolean {
    const handle = this.handle;
    return this.device.query('cuEventQuery', (cu) => cu.cuEventQuery(handle));
  }

  /** Resolves when the recorded work is done, without blocking the event loop. */
  wait(): Promise<void> {
    return pollUntil(() => this.query());
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.device.release('cuEventDestroy_v2', (cu) => cu.cuEventDestroy_v2(this.eventHandle));
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
