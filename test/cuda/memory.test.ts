/**
 * Device-memory lifetime without a GPU, on a fake device that logs what would reach the driver:
 * frees are stream-ordered (never a synchronisation), dispose() and `using` free once, a tensor
 * the program drops is freed by the finalizer, foreign memory never is, frees wait for streams
 * that used the memory and for graph captures, and allocation pressure makes the garbage
 * collector run so that a loop that never disposes stays bounded. (The split workspace, which
 * builds on this, is tested in test/cuda-backend/split-workspace.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { beginCapture, endCapture } from '../../src/cuda/graph.js';
import { DeviceBuffer } from '../../src/cuda/memory.js';
import { CudaStream } from '../../src/cuda/stream.js';
import { DtypeError, OptionError, ShapeError } from '../../src/errors.js';
import { collectUntil, FakeCuda } from '../support/fake-cuda.js';

/** Allocates and drops a tensor; nothing here keeps it. */
function dropTensor(fake: FakeCuda, elements: number, stream?: CudaStream): void {
  DeviceTensor.empty(fake.device, 'float32', [elements], stream);
}

test('a dropped tensor is freed by the finalizer, in the order of its stream', async () => {
  const fake = new FakeCuda();
  dropTensor(fake, 256);
  assert.deepEqual(fake.log, ['alloc p1 1024 s1']);
  assert.ok(
    await collectUntil(() => fake.live.size === 0),
    `not freed after collections: ${fake.log}`,
  );
  assert.deepEqual(fake.log, ['alloc p1 1024 s1', 'free p1 s1']);
  assert.ok(!fake.log.includes('sync'), 'no synchronisation');
});

test('dispose() and `using` free at once, exactly once; foreign memory is never freed', async () => {
  const fake = new FakeCuda();
  const disposed = DeviceTensor.empty(fake.device, 'bf16', [8]);
  disposed.dispose();
  disposed.dispose();
  assert.deepEqual(fake.about('p1'), ['alloc p1 16 s1', 'free p1 s1']);
  assert.throws(() => disposed.ptr, /was disposed/);
  {
    using scoped = DeviceTensor.empty(fake.device, 'int32', [4]);
    assert.equal(fake.live.size, 1, `${scoped.dtype} tensor alive in its block`);
  }
  assert.deepEqual(fake.about('p2'), ['alloc p2 16 s1', 'free p2 s1']);
  {
    using _buffer = DeviceBuffer.alloc(fake.device, 64);
  }
  assert.deepEqual(fake.about('p3'), ['alloc p3 64 s1', 'free p3 s1']);
  DeviceTensor.wrap(fake.device, 0x7f0000000000n, 'bf16', [1024]).dispose();
  (() => DeviceTensor.wrap(fake.device, 0x7f0000001000n, 'bf16', [1024]))();
  const mark = fake.log.length;
  await collectUntil(() => false);
  assert.deepEqual(fake.since(mark), [], 'no second free, and wrapped memory is not ours');
  assert.equal(fake.live.size, 0);
});

test('memory used on another stream: that stream waits for the allocation, the free for it', () => {
  const fake = new FakeCuda();
  const main = fake.device.defaultStream;
  const other = CudaStream.create(fake.device);
  const tensor = DeviceTensor.empty(fake.device, 'float32', [4]);
  tensor.useOn(main);
  tensor.useOn(other);
  tensor.useOn(other);
  assert.deepEqual(fake.log, ['alloc p1 16 s1', 'record e1 s1', 'wait s2 e1']);
  tensor.dispose();
  assert.deepEqual(fake.log.slice(3), ['record e2 s2', 'wait s1 e2', 'free p1 s1']);
  assert.ok(!fake.log.includes('sync'));
});

test('frees wait for a graph capture to end; nothing may be allocated on a capturing stream', () => {
  const fake = new FakeCuda();
  const stream = CudaStream.create(fake.device);
  const tensor = DeviceTensor.empty(fake.device, 'float32', [4], stream);
  beginCapture(stream);
  tensor.dispose();
  assert.deepEqual(fake.log, ['alloc p1 16 s1', 'begin s1'], 'a free now would be recorded');
  assert.throws(
    () => DeviceTensor.empty(fake.device, 'float32', [4], stream),
    (error: unknown) => error instanceof OptionError && /not capturing a graph/.test(error.message),
  );
  endCapture(stream).dispose();
  assert.deepEqual(fake.log.slice(2), ['end s1', 'free p1 s1']);
});

test('a lost or disposed device frees nothing, and a failing free never throws from the finalizer', async () => {
  const lost = new FakeCuda();
  const tensor = DeviceTensor.empty(lost.device, 'float32', [4]);
  lost.poisoned = true;
  tensor.dispose();
  dropTensor(new FakeCuda(), 4);
  const failing = new FakeCuda();
  dropTensor(failing, 4);
  failing.live.clear(); // the fake driver now refuses the free
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  try {
    assert.ok(await collectUntil(() => warnings.length > 0), 'the failure became a warning');
  } finally {
    process.off('warning', onWarning);
  }
  assert.match(warnings[0], /freeing 16 bytes of a dropped device buffer failed/);
  assert.deepEqual(lost.log, ['alloc p1 16 s1']);
});

test('allocating without disposing runs the collector, so dropped memory stays bounded', async () => {
  // 1/64 of this device's memory is 1 MiB: every fourth 256 KiB tensor triggers a collection.
  const fake = new FakeCuda({ totalMemoryBytes: 64 * 2 ** 20 });
  let mostLive = 0;
  for (let step = 0; step < 400; step++) {
    dropTensor(fake, 2 ** 16);
    mostLive = Math.max(mostLive, fake.live.size);
    // A decode loop yields to the event loop now and then (awaiting results): finalizers run there.
    if (step % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(mostLive <= 40, `${mostLive} tensors of 256 KiB were alive at once (bound: 40)`);
});

test('device tensors refuse bad dtypes, shapes and pointers with library errors', () => {
  const fake = new FakeCuda();
  assert.throws(() => DeviceTensor.empty(fake.device, 'bf17' as 'bf16', [2]), DtypeError);
  assert.throws(() => DeviceTensor.empty(fake.device, 'bf16', [-2]), ShapeError);
  assert.throws(
    () => DeviceTensor.wrap(fake.device, 4096 as unknown as bigint, 'bf16', [2]),
    (error: unknown) => error instanceof OptionError && /got number 4096/.test(error.message),
  );
  assert.deepEqual(fake.log, [], 'nothing was allocated');
});
