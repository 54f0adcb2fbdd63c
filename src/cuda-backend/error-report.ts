/**
 * What the decode kernels found wrong in the values they were given (DeviceErrorReport in
 * csrc/params.h): a used block id outside the cache, a length beyond the block table, a schedule
 * made for other lengths or edited. The kernels never read outside the cache or the block table
 * whatever the values; they record what they guarded against here, and the next wait for the
 * stream that ran them raises it as a typed error naming the sequence, so no wrong answer goes
 * unreported. Cost: nothing per call; one 16-byte copy at the first wait after decode calls.
 */
import type { CudaDevice } from '../cuda/device.js';
import type { DevicePointer } from '../cuda/driver.js';
import { copyDeviceToHostSync, copyHostToDeviceSync, DeviceBuffer } from '../cuda/memory.js';
import type { CudaStream } from '../cuda/stream.js';
import { type FlashMlaError, MetadataMismatchError, ValueError } from '../errors.js';
import { DeviceErrorReportLayout } from './layout.js';

/** DeviceErrorFlag in csrc/params.h. */
const BLOCK_ID_OUT_OF_RANGE = 1;
const LENGTH_OUT_OF_RANGE = 2;
const STALE_SCHEDULE = 4;
const NO_SEQUENCE = 2 ** 31 - 1;
const CONSEQUENCE = 'the decode calls since the last synchronisation returned wrong results';

export class KernelErrorReport {
  private readonly buffer: DeviceBuffer;
  /** Streams that ran decode kernels since their last wait. */
  private readonly pending = new Set<CudaStream>();

  constructor(device: CudaDevice) {
    this.buffer = DeviceBuffer.alloc(device, DeviceErrorReportLayout.size);
    this.clear();
    device.addWaitCheck((stream) => this.raiseAfterWait(stream));
  }

  /** The report's address for decode kernels run on `stream`; the next wait for it reads it. */
  pointerFor(stream: CudaStream): DevicePointer {
    this.pending.add(stream);
    return this.buffer.ptr;
  }

  private clear(): void {
    copyHostToDeviceSync(this.buffer, Int32Array.of(0, NO_SEQUENCE, NO_SEQUENCE, NO_SEQUENCE));
  }

  /** After a wait for `stream` (null: the whole device) that covers decode kernels. */
  private raiseAfterWait(stream: CudaStream | null): void {
    if (stream === null) {
      if (this.pending.size === 0) return;
      this.pending.clear();
    } else if (!this.pending.delete(stream)) {
      return;
    }
    const report = new Int32Array(4);
    copyDeviceToHostSync(report, this.buffer, stream ?? undefined);
    const [flags, blockIdBatch, lengthBatch, scheduleBatch] = report;
    if (flags === 0) return;
    this.clear();
    throw errorOf(flags, blockIdBatch, lengthBatch, scheduleBatch);
  }
}

/** The most telling error of those reported; the others are named in its message. */
function errorOf(
  flags: number,
  blockIdBatch: number,
  lengthBatch: number,
  scheduleBatch: number,
): FlashMlaError {
  const also: string[] = [];
  if (flags & STALE_SCHEDULE && flags !== STALE_SCHEDULE) also.push('other bad values');
  if (flags & STALE_SCHEDULE) {
    return new MetadataMismatchError(
      'tileSchedulerMetadata',
      'the schedule getMlaMetadata made for the cacheSeqlens of each decode call (recompute it after the lengths change)',
      `a schedule made for other lengths, or edited (found from sequence ${scheduleBatch}); ${CONSEQUENCE}${also.length > 0 ? `; also ${also.join(', ')}` : ''}`,
    );
  }
  if (flags & LENGTH_OUT_OF_RANGE) {
    const blockIds =
      flags & BLOCK_ID_OUT_OF_RANGE
        ? `; also a block id outside the cache (sequence ${blockIdBatch})`
        : '';
    return new ValueError(
      'cacheSeqlens',
      'lengths in [0, blockTable.shape[1] * 64]',
      `sequence ${lengthBatch} has a length outside (the kernels clamped it); ${CONSEQUENCE}${blockIds}`,
    );
  }
  return new ValueError(
    'blockTable',
    'used block ids in [0, kCache.shape[0])',
    `sequence ${blockIdBatch === NO_SEQUENCE ? '?' : blockIdBatch} uses one outside (the kernels read zeros in its place); ${CONSEQUENCE}`,
  );
}
