/**
 * The split workspace of split-KV decode, on a fake device (no GPU): one per stream, shared by
 * the metadata made on that stream, so that the natural loop (getMlaMetadata every step, never
 * disposed) allocates the megabytes of partials once and only the two small schedule tensors
 * per step, which the finalizers free.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CudaStream } from '../../src/cuda/stream.js';
import { CudaMlaMetadata } from '../../src/cuda-backend/metadata.js';
import { partialRows, SplitWorkspaces } from '../../src/cuda-backend/split-workspace.js';
import { collectUntil, FakeCuda } from '../support/fake-cuda.js';

test('the split workspace is one per stream, reused step after step, grown when too small', () => {
  const fake = new FakeCuda();
  const workspaces = new SplitWorkspaces(fake.device);
  const stream = fake.device.defaultStream;
  const first = workspaces.for(stream, 1000);
  for (let step = 0; step < 1000; step++) assert.equal(workspaces.for(stream, 1000), first);
  assert.equal(workspaces.for(stream, 10), first);
  assert.equal(fake.live.size, 2, 'o and lse partials, allocated once');
  const grown = workspaces.for(stream, 1200);
  assert.equal(grown.capacityRows, 1500, 'grown by half at least, not by 200 rows at a time');
  assert.equal(workspaces.for(stream, 1400), grown);
  const other = CudaStream.create(fake.device);
  assert.notEqual(workspaces.for(other, 10), grown, 'another stream may run at the same time');
  assert.deepEqual(
    [...fake.live.values()].sort((a, b) => a - b),
    [4000, 40, 6000, 4 * 512 * 1000, 4 * 512 * 10, 4 * 512 * 1500].sort((a, b) => a - b),
  );
});

test('metadata made step after step share their stream workspace; dropped, only their schedule is freed', async () => {
  const fake = new FakeCuda();
  const workspaces = new SplitWorkspaces(fake.device);
  const stream = fake.device.defaultStream;
  const layout = { batch: 64, numQRowsPerKvHead: 16, numHeadsK: 1 };
  const numSmParts = 66;
  const rows = partialRows({ ...layout, numSmParts });
  const makeAndDrop = () => {
    const metadata = new CudaMlaMetadata(
      fake.device,
      layout,
      numSmParts,
      workspaces.for(stream, rows),
    );
    assert.equal(metadata.partialRows, rows);
    return metadata.workspace;
  };
  const workspace = makeAndDrop();
  for (let step = 0; step < 200; step++) assert.equal(makeAndDrop(), workspace);
  const workspaceAllocations = fake.log.filter(
    (line) => line.endsWith(` ${4 * rows} s1`) || line.endsWith(` ${4 * 512 * rows} s1`),
  );
  assert.equal(workspaceAllocations.length, 2, 'o and lse partials, allocated once for 201 steps');
  assert.ok(
    await collectUntil(() => fake.live.size === 2),
    `the dropped schedules are freed, the shared workspace is kept: ${fake.live.size} live`,
  );
  const disposed = new CudaMlaMetadata(fake.device, layout, numSmParts, workspace);
  disposed.dispose();
  assert.equal(fake.live.size, 2, 'dispose() frees the schedule, not the shared workspace');
  const other = CudaStream.create(fake.device);
  const elsewhere = new CudaMlaMetadata(
    fake.device,
    layout,
    numSmParts,
    workspaces.for(other, rows),
  );
  assert.notEqual(elsewhere.workspace, workspace, 'metadata of another stream get its own');
  const onOther = fake.log.filter((line) => line.startsWith('alloc') && line.endsWith(' s2'));
  assert.equal(onOther.length, 4, 'its workspace and schedule are allocated in its stream order');
});
