/**
 * What a server needs beyond right answers: a whole decode step captured in a CUDA graph and
 * replayed with new cache lengths, 64-bit cache offsets (block ids past the 32-bit wrap), and
 * grids past the 65535 limit of their y/z dimensions.
 */
import assert from 'node:assert/strict';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { captureGraph } from '../../src/cuda/graph.js';
import { copyHostToDeviceSync } from '../../src/cuda/memory.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { comparePrecision } from '../../src/verify/precision.js';
import { decodeOnGpu, generateOnGpu, gpuTest, referenceOnGpu, SUITE_SEED } from './support.js';

gpuTest('CUDA graph: metadata + decode captured once, replayed with new cache lengths', (backend) => {
  const random = new Random(SUITE_SEED);
  const batch = 8;
  const problem = generateOnGpu(backend, { batch, seqlenQ: 2, numHeadsQ: 64, numHeadsKv: 1, meanLength: 600, varlen: 'normal', causal: true, dtype: 'bf16' }, random);
  const capacity = problem.blockTable.shape[1] * 64;
  const out = backend.empty('bf16', [batch, 2, 64, HEAD_DIM_V]);
  const lse = backend.empty('float32', [batch, 64, 2]);
  const stream = backend.stream;
  // Metadata (and its workspace) is allocated before capture; the captured step only recomputes
  // the schedule into it and decodes, so replays follow new lengths with no allocation.
  const metadata = getMlaMetadata(problem.cacheSeqlens, 128, 1, { stream });
  const step = () => {
    getMlaMetadata(problem.cacheSeqlens, 128, 1, { stream, into: metadata });
    flashMlaWithKvcache(problem.q, problem.kCache, problem.blockTable, problem.cacheSeqlens, HEAD_DIM_V, metadata.tileSchedulerMetadata, metadata.numSplits, {
      causal: true,
      out,
      lse,
      stream,
    });
  };
  step();
  stream.synchronize();
  const captured = captureGraph(stream, step);
  const exec = captured.instantiate();
  for (let replay = 0; replay < 4; replay++) {
    // New lengths, within the block table's capacity, written into the same device buffer.
    const lengths = Int32Array.from({ length: batch }, () => random.int(replay === 0 ? 0 : 2, capacity));
    copyHostToDeviceSync(problem.cacheSeqlens.storage(), lengths);
    out.fillNaN(stream);
    exec.launch(stream);
    const reference = referenceOnGpu(backend, { ...problem, lengths });
    const report = comparePrecision({ out: out.toHostSync(), lse: lse.toHostSync() }, reference);
    assert.ok(report.ok, `replay ${replay} lengths [${lengths}] (seed ${SUITE_SEED})\n${report.failures.join('\n')}`);
  }
  exec.dispose();
  captured.dispose();
  metadata.dispose();
  out.dispose();
  lse.dispose();
  problem.dispose();
});

gpuTest('block ids past the 32-bit element-offset wrap (>= 58,255 blocks of 64 x 576)', (backend) => {
  const random = new Random(SUITE_SEED + 1);
  // Two sequences whose blocks sit at the very end of a 60,000-block pool (4.4 GB of cache).
  const lengths = Int32Array.from([200, 130]);
  const problem = generateOnGpu(backend, { batch: 2, seqlenQ: 1, numHeadsQ: 16, numHeadsKv: 1, meanLength: 0, varlen: 'off', causal: false, dtype: 'bf16', lengths }, random, 60_000 - 7);
  const table = HostTensor.fromValues('int32', [2, 4], [59_999, 59_990, 58_300, 58_256, 59_000, 58_255, -1, -1]);
  // Move the data the generator placed into the far blocks the new table names.
  const oldTable = problem.blockTable.toHostSync();
  const rowBytes = 64 * 576 * 2;
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < Math.ceil(lengths[i] / 64); j++) {
      const from = BigInt(oldTable.get(i, j) * rowBytes);
      const to = BigInt(table.get(i, j) * rowBytes);
      const src = DeviceTensor.wrap(backend.device, problem.kCache.ptr + from, 'bf16', [64 * 576]);
      const dst = DeviceTensor.wrap(backend.device, problem.kCache.ptr + to, 'bf16', [64 * 576]);
      copyHostToDeviceSync(dst.storage(), src.toHostSync().data);
    }
  }
  problem.blockTable.dispose();
  const blockTable = DeviceTensor.fromHost(backend.device, table, backend.stream);
  const moved = { ...problem, blockTable };
  const result = decodeOnGpu(backend, moved, 'far blocks');
  result.metadata.dispose();
  const report = comparePrecision(result, referenceOnGpu(backend, moved));
  assert.ok(report.ok, report.failures.join('\n'));
  assert.ok(Array.from(result.lse.toFloat64Array()).every(Number.isFinite));
  blockTable.dispose();
  problem.dispose();
});

gpuTest('b * s_q beyond 65535 (grid-dimension limits)', (backend) => {
  const random = new Random(SUITE_SEED + 2);
  const batch = 32768;
  const problem = generateOnGpu(backend, { batch, seqlenQ: 3, numHeadsQ: 1, numHeadsKv: 1, meanLength: 3, varlen: 'half-empty', causal: true, dtype: 'bf16' }, random);
  const result = decodeOnGpu(backend, problem, 'big batch');
  result.metadata.dispose();
  const report = comparePrecision(result, referenceOnGpu(backend, problem));
  assert.ok(report.ok, report.failures.join('\n'));
  problem.dispose();
});
