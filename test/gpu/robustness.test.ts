/**
 * What a server needs beyond right answers: a whole decode step captured in a CUDA graph and
 * replayed with new cache lengths, 64-bit cache offsets (block ids past the 32-bit wrap), and
 * grids past the 65535 limit of their y/z dimensions.
 */
import assert from 'node:assert/strict';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import type { MlaMetadata } from '../../src/backend/metadata.js';
import { HEAD_DIM_V } from '../../src/config.js';
import { MetadataMismatchError, ValueError } from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { comparePrecision, judgeDecode } from '../../src/verify/precision.js';
import { generateProblem } from '../../src/verify/problems.js';
import {
  type DeviceProblem,
  decodeOnGpu,
  generateOnGpu,
  gpuTest,
  referenceOnGpu,
  SUITE_SEED,
  uploadProblem,
} from './support.js';

gpuTest(
  'CUDA graph: metadata + decode captured once, replayed with new cache lengths',
  (backend) => {
    const random = new Random(SUITE_SEED);
    const batch = 8;
    const problem = generateOnGpu(
      backend,
      {
        batch,
        seqlenQ: 2,
        numHeadsQ: 64,
        numHeadsKv: 1,
        meanLength: 600,
        varlen: 'normal',
        causal: true,
        dtype: 'bf16',
      },
      random,
    );
    // Each sequence may grow to the end of its last block: entries past it are padding, and a
    // length reaching them would be (rightly) reported as a block id outside the cache.
    const capacity = Array.from(problem.lengths, (length) => Math.ceil(length / 64) * 64);
    const out = backend.empty('bf16', [batch, 2, 64, HEAD_DIM_V]);
    const lse = backend.empty('float32', [batch, 64, 2]);
    // Metadata (and its workspace) is allocated before capture; the captured step only recomputes
    // the schedule into it and decodes, so replays follow new lengths with no allocation.
    const metadata = getMlaMetadata(problem.cacheSeqlens, 128, 1);
    const step = backend.captureGraph(() => {
      getMlaMetadata(problem.cacheSeqlens, 128, 1, { into: metadata });
      flashMlaWithKvcache(
        problem.q,
        problem.kCache,
        problem.blockTable,
        problem.cacheSeqlens,
        HEAD_DIM_V,
        metadata,
        { causal: true, out, lse },
      );
    });
    for (let replay = 0; replay < 4; replay++) {
      // New lengths, within the block table's capacity, written into the same device buffer.
      const lengths = Int32Array.from(capacity, (most) =>
        random.int(replay === 0 ? 0 : Math.min(2, most), most),
      );
      backend.write(problem.cacheSeqlens, new HostTensor('int32', lengths, [batch]));
      out.fillNaN();
      step.replay();
      const reference = referenceOnGpu(backend, { ...problem, lengths });
      const report = comparePrecision({ out: out.toHostSync(), lse: lse.toHostSync() }, reference);
      assert.ok(
        report.ok,
        `replay ${replay} lengths [${lengths}] (seed ${SUITE_SEED})\n${report.failures.join('\n')}`,
      );
    }
    step.dispose();
    metadata.dispose();
    out.dispose();
    lse.dispose();
    problem.dispose();
  },
);

gpuTest(
  'block ids past the 32-bit element-offset wrap (>= 58,255 blocks of 64 x 576)',
  (backend) => {
    const random = new Random(SUITE_SEED + 1);
    // A 60,000-block pool (4.4 GB of bf16 cache) whose used blocks all sit at ids >= 59,000.
    const lengths = Int32Array.from([200, 130, 64 * 10]);
    const problem = generateOnGpu(
      backend,
      {
        batch: 3,
        seqlenQ: 2,
        numHeadsQ: 16,
        numHeadsKv: 1,
        meanLength: 0,
        varlen: 'off',
        causal: true,
        dtype: 'bf16',
        lengths,
      },
      random,
      60_000 - 17,
      59_000,
    );
    const ids = Array.from(problem.blockTable.toHostSync().data).filter((id) => id < 60_000);
    assert.ok(ids.length === 17 && ids.every((id) => id >= 59_000), `used block ids ${ids}`);
    const result = decodeOnGpu(backend, problem, 'far blocks');
    result.metadata.dispose();
    const report = comparePrecision(result, referenceOnGpu(backend, problem));
    assert.ok(report.ok, `seed ${SUITE_SEED + 1}: ${report.failures.join('\n')}`);
    assert.ok(Array.from(result.lse.toFloat64Array()).every(Number.isFinite));
    problem.dispose();
  },
);

gpuTest('b * s_q beyond 65535 (grid-dimension limits)', (backend) => {
  const random = new Random(SUITE_SEED + 2);
  const batch = 32768;
  const problem = generateOnGpu(
    backend,
    {
      batch,
      seqlenQ: 3,
      numHeadsQ: 1,
      numHeadsKv: 1,
      meanLength: 3,
      varlen: 'half-empty',
      causal: true,
      dtype: 'bf16',
    },
    random,
  );
  const result = decodeOnGpu(backend, problem, 'big batch');
  result.metadata.dispose();
  const report = comparePrecision(result, referenceOnGpu(backend, problem));
  assert.ok(report.ok, `seed ${SUITE_SEED + 2}: ${report.failures.join('\n')}`);
  problem.dispose();
});

/**
 * The kernels never read outside the cache or the block table whatever the values, and report
 * what they guarded against: the next wait raises a typed error naming the sequence, and the
 * report is clear for the calls after it.
 */
function reportedProblem(backend: Parameters<Parameters<typeof gpuTest>[1]>[0]) {
  const random = new Random(SUITE_SEED);
  const host = generateProblem(
    {
      batch: 4,
      seqlenQ: 1,
      numHeadsQ: 16,
      numHeadsKv: 1,
      meanLength: 200,
      lengths: [200, 130, 70, 190],
      causal: false,
    },
    random,
  );
  return { host, device: uploadProblem(backend, host) };
}

/** A plain decode of the reported problem (outputs allocated by the call). */
function decodeReported(device: DeviceProblem, metadata: MlaMetadata) {
  return flashMlaWithKvcache(
    device.q,
    device.kCache,
    device.blockTable,
    device.cacheSeqlens,
    HEAD_DIM_V,
    metadata,
  );
}

gpuTest(
  'a block id outside the cache: the next wait raises ValueError naming the sequence',
  (backend) => {
    const { host, device } = reportedProblem(backend);
    const metadata = getMlaMetadata(device.cacheSeqlens, 16, 1);
    const table = host.blockTable.contiguous();
    const ids = Int32Array.from(table.data as Int32Array);
    const columns = table.shape[1];
    ids[2 * columns + 1] = device.kCache.shape[0] + 5; // sequence 2's second (used) block
    backend.write(device.blockTable, new HostTensor('int32', ids, table.shape));
    const { out } = decodeReported(device, metadata);
    assert.throws(
      () => out.toHostSync(),
      (error: unknown) =>
        error instanceof ValueError &&
        /blockTable/.test(error.message) &&
        /sequence 2\b/.test(error.message),
    );
    // The report was cleared: a call with the table repaired is answered.
    backend.write(device.blockTable, table);
    const again = decodeReported(device, metadata);
    const verdict = judgeDecode({ out: again.out.toHostSync(), lse: again.lse.toHostSync() }, host);
    assert.ok(verdict.ok, `seed ${SUITE_SEED}: ${verdict.report.failures.join('\n')}`);
    metadata.dispose();
    device.dispose();
  },
);

gpuTest(
  'metadata made for other lengths: the next wait raises MetadataMismatchError',
  (backend) => {
    const { device } = reportedProblem(backend);
    const metadata = getMlaMetadata(device.cacheSeqlens, 16, 1);
    // The next decode step: one sequence grew, and the schedule was not recomputed.
    backend.write(
      device.cacheSeqlens,
      new HostTensor('int32', Int32Array.of(200, 131, 70, 190), [4]),
    );
    const { out } = decodeReported(device, metadata);
    assert.throws(() => out.toHostSync(), MetadataMismatchError);
    // Recomputed, the same call is answered.
    getMlaMetadata(device.cacheSeqlens, 16, 1, { into: metadata });
    const again = decodeReported(device, metadata);
    assert.doesNotThrow(() => again.out.toHostSync());
    metadata.dispose();
    device.dispose();
  },
);

gpuTest(
  'a length beyond the block table: the next wait raises ValueError on cacheSeqlens',
  (backend) => {
    const { host, device } = reportedProblem(backend);
    const capacity = host.blockTable.shape[1] * 64;
    backend.write(
      device.cacheSeqlens,
      new HostTensor('int32', Int32Array.of(200, 130, capacity + 9, 190), [4]),
    );
    const metadata = getMlaMetadata(device.cacheSeqlens, 16, 1);
    const { lse } = decodeReported(device, metadata);
    assert.throws(
      () => lse.toHostSync(),
      (error: unknown) =>
        error instanceof ValueError &&
        /cacheSeqlens/.test(error.message) &&
        /sequence 2\b/.test(error.message),
    );
    metadata.dispose();
    device.dispose();
  },
);
