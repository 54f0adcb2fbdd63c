/**
 * A GPU where there is none, for the memory bookkeeping: an object shaped like CudaDevice whose
 * driver calls go to a fake driver that hands out addresses and handles and logs, in order,
 * what would reach the GPU: `alloc p1 1024 s1`, `free p1 s1`, `record e1 s1`, `wait s2 e1`,
 * `sync`. Streams, events, tensors and graphs of the real library run on it unchanged.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CudaDevice } from '../../src/cuda/device.js';
import type { CudaDriver } from '../../src/cuda/driver.js';
import { CudaStream } from '../../src/cuda/stream.js';

const SUCCESS = 0;

export class FakeCuda {
  /** What the fake driver was asked to do, in order. */
  readonly log: string[] = [];
  /** Allocations not yet freed: name -> bytes. */
  readonly live = new Map<string, number>();
  readonly device: CudaDevice;
  /** Set to make the device look lost after a sticky error (its frees are then skipped). */
  poisoned = false;
  disposed = false;
  private readonly names = new Map<bigint, string>();
  private nextHandle = 0x1000n;
  private counts = { p: 0, s: 0, e: 0, g: 0 };
  private stream: CudaStream | undefined;

  constructor(options: { totalMemoryBytes?: number } = {}) {
    const fake = this;
    const driver = this.driver();
    const device = {
      ordinal: 0,
      name: 'Fake GPU',
      totalMemoryBytes: options.totalMemoryBytes ?? 80 * 2 ** 30,
      memoryPool: 0x9001n,
      get disposed() {
        return fake.disposed;
      },
      get poisoned() {
        return fake.poisoned;
      },
      get defaultStream(): CudaStream {
        if (fake.stream === undefined || fake.stream.disposed) {
          fake.stream = CudaStream.create(device as unknown as CudaDevice);
        }
        return fake.stream;
      },
      assertUsable(what: string) {
        if (fake.disposed || fake.poisoned) throw new Error(`fake device unusable: ${what}`);
      },
      call(name: string, invoke: (cu: CudaDriver) => number) {
        device.assertUsable(name);
        const result = invoke(driver);
        if (result !== SUCCESS) throw new Error(`${name} failed with ${result}`);
      },
      query(name: string, invoke: (cu: CudaDriver) => number) {
        device.call(name, invoke);
        return true;
      },
      release(name: string, invoke: (cu: CudaDriver) => number) {
        if (fake.disposed || fake.poisoned) return;
        device.call(name, invoke);
      },
      synchronize() {
        fake.log.push('sync');
      },
    };
    this.device = device as unknown as CudaDevice;
  }

  /** The log lines that mention `name` (an allocation, stream or event). */
  about(name: string): string[] {
    return this.log.filter((line) => line.split(' ').includes(name));
  }

  /** Log lines from `mark` (a length of the log taken earlier) on. */
  since(mark: number): string[] {
    return this.log.slice(mark);
  }

  private handle(kind: 'p' | 's' | 'e' | 'g'): bigint {
    this.counts[kind]++;
    const handle = this.nextHandle;
    this.nextHandle += 0x100n;
    this.names.set(handle, `${kind}${this.counts[kind]}`);
    return handle;
  }

  private nameOf(handle: bigint): string {
    return this.names.get(handle) ?? `0x${handle.toString(16)}`;
  }

  private driver(): CudaDriver {
    const fake = this;
    const partial: Partial<CudaDriver> = {
      cuStreamCreate(out) {
        out[0] = fake.handle('s');
        return SUCCESS;
      },
      cuStreamDestroy_v2(stream) {
        fake.log.push(`destroy ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuStreamSynchronize(stream) {
        fake.log.push(`sync ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuStreamWaitEvent(stream, event) {
        fake.log.push(`wait ${fake.nameOf(stream)} ${fake.nameOf(event)}`);
        return SUCCESS;
      },
      cuEventCreate(out) {
        out[0] = fake.handle('e');
        return SUCCESS;
      },
      cuEventRecord(event, stream) {
        fake.log.push(`record ${fake.nameOf(event)} ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuEventDestroy_v2() {
        return SUCCESS;
      },
      cuMemAllocFromPoolAsync(out, bytes, _pool, stream) {
        out[0] = fake.handle('p');
        const name = fake.nameOf(out[0]);
        fake.live.set(name, bytes);
        fake.log.push(`alloc ${name} ${bytes} ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuMemFreeAsync(pointer, stream) {
        const name = fake.nameOf(pointer);
        if (!fake.live.delete(name)) throw new Error(`free of ${name}, which is not allocated`);
        fake.log.push(`free ${name} ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuStreamBeginCapture_v2(stream) {
        fake.log.push(`begin ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuStreamEndCapture(stream, graph) {
        graph[0] = fake.handle('g');
        fake.log.push(`end ${fake.nameOf(stream)}`);
        return SUCCESS;
      },
      cuGraphDestroy() {
        return SUCCESS;
      },
    };
    return partial as CudaDriver;
  }
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Runs full collections, letting the event loop turn after each (finalizers run there), until
 * `done()` holds; false if it still does not after a few seconds.
 */
export async function collectUntil(done: () => boolean): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (done()) return true;
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return done();
}
