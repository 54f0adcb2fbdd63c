/**
 * The small kernels on their own: the scheduler kernel against the CPU scheduler, the GPU
 * oracle against the float64 reference, the combine kernel over 1..133 splits, and a TMA copy
 * through a tensor map encoded from TypeScript.
 */
import assert from 'node:assert/strict';
import { getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_V, MAX_SCHEDULER_BATCH } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { encodeTensorMapTiled } from '../../src/cuda/tensor-map.js';
import { launchCombine } from '../../src/cuda-backend/launch.js';
import { AttentionShapeLayout, ParamBlock } from '../../src/cuda-backend/layout.js';
import { partialRows } from '../../src/cuda-backend/split-workspace.js';
import { LimitError } from '../../src/errors.js';
import { absWeightedVAt, referenceDecode } from '../../src/reference/reference.js';
import { computeTileSchedule, fixedOverheadBlocksFor, numSmPartsFor } from '../../src/scheduler.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { judgeDecode } from '../../src/verify/precision.js';
import { DATA_KIND_NAMES, drawLengths, generateProblem } from '../../src/verify/problems.js';
import { gpuTest, referenceOnGpu, SUITE_SEED, uploadProblem } from './support.js';
import { launchTmaProbe } from './test-kernels.js';

gpuTest('metadata kernel == CPU scheduler, bit for bit', (backend) => {
  const random = new Random(SUITE_SEED);
  const cases: { lengths: Int32Array; rows: number; heads: number }[] = [
    { lengths: Int32Array.from([0]), rows: 1, heads: 1 },
    { lengths: Int32Array.from([0, 0, 0]), rows: 128, heads: 1 },
    { lengths: Int32Array.from([1, 64 * 4000, 3, 0]), rows: 16, heads: 1 },
    { lengths: drawLengths(random, MAX_SCHEDULER_BATCH, 300, 'normal', 1), rows: 16, heads: 1 },
  ];
  // getMlaMetadata also sizes the split workspace: (b + parts) · h_kv · rows partial rows of
  // 2 KiB each. Shapes beyond 2 GiB of it are drawn again, so that the test fits every card.
  const workspaceBytes = (batch: number, rows: number, heads: number) =>
    partialRows({
      batch,
      numSmParts: numSmPartsFor(backend.device.multiProcessorCount, rows, heads),
      numHeadsK: heads,
      numQRowsPerKvHead: rows,
    }) *
    (HEAD_DIM_V + 1) *
    4;
  while (cases.length < 64) {
    const batch = random.pick([1, 2, 6, 64, 128, 132, 133, 1000, 5000]);
    const rows = random.pick([1, 16, 64, 65, 128, 256, 1024]);
    const heads = random.pick([1, 2, 3, 8]);
    if (workspaceBytes(batch, rows, heads) > 2 ** 31) continue;
    const lengths = drawLengths(
      random,
      batch,
      random.pick([1, 20, 140, 4096, 16384]),
      random.pick(['off', 'normal', 'half-empty'] as const),
      1,
    );
    cases.push({ lengths, rows, heads });
  }
  for (const { lengths, rows, heads } of cases) {
    const seqlens = DeviceTensor.fromHost(
      backend.device,
      new HostTensor('int32', lengths, [lengths.length]),
      backend.stream,
    );
    const metadata = getMlaMetadata(seqlens, rows, heads);
    const parts = numSmPartsFor(backend.device.multiProcessorCount, rows, heads);
    const expected = computeTileSchedule(
      lengths,
      parts,
      undefined,
      fixedOverheadBlocksFor(rows, lengths.length),
    );
    const label = `seed ${SUITE_SEED}, b=${lengths.length} rows=${rows} h_kv=${heads}`;
    assert.deepEqual(
      metadata.tileSchedulerMetadata.toHostSync().data,
      expected.tileSchedulerMetadata,
      label,
    );
    assert.deepEqual(metadata.numSplits.toHostSync().data, expected.numSplits, label);
    metadata.dispose();
    seqlens.dispose();
  }
});

gpuTest('metadata refuses batches beyond the scheduler kernel shared memory', (backend) => {
  const seqlens = DeviceTensor.empty(backend.device, 'int32', [MAX_SCHEDULER_BATCH + 1]);
  assert.throws(
    () => getMlaMetadata(seqlens, 16, 1),
    (e: unknown) => e instanceof LimitError && e.argument === 'cacheSeqlens',
  );
  seqlens.dispose();
});

gpuTest(
  'GPU oracle == float64 reference on small shapes, its error-scale bounds above the exact scales',
  (backend) => {
    const random = new Random(SUITE_SEED + 1);
    for (let trial = 0; trial < 24; trial++) {
      const [numHeadsQ, numHeadsKv] = random.pick([
        [1, 1],
        [3, 1],
        [9, 3],
        [16, 1],
        [64, 8],
        [128, 2],
      ] as const);
      const problem = generateProblem(
        {
          batch: random.pick([1, 2, 6]),
          seqlenQ: random.pick([1, 2, 4]),
          numHeadsQ,
          numHeadsKv,
          meanLength: random.pick([0, 1, 20, 65, 140]),
          varlen: random.pick(['off', 'normal', 'half-empty'] as const),
          causal: random.uniform() < 0.5,
          dtype: random.pick(['bf16', 'fp16'] as const),
          paddedStrides: random.uniform() < 0.3,
          softmaxScale: random.pick([undefined, 0.5, 192 ** -0.5]),
          data: random.pick(DATA_KIND_NAMES),
        },
        random,
      );
      const onGpu = uploadProblem(backend, problem);
      const oracle = referenceOnGpu(backend, onGpu);
      onGpu.dispose();
      const exact = referenceDecode(problem, { errorScales: true });
      const verdict = judgeDecode(oracle, problem, exact);
      const label = `seed ${SUITE_SEED + 1} trial ${trial}`;
      assert.ok(verdict.ok, `${label}: ${verdict.report.failures.join('\n')}`);
      // What the grid judges against must bound the exact scales from above.
      const bounds = oracle.errorScales;
      assert.ok(
        exact.errorScales.absWeightedV.every(
          (a, e) => a <= absWeightedVAt(bounds, e) * (1 + 1e-12),
        ),
        `${label}: A above its bound`,
      );
      assert.ok(
        exact.errorScales.scoreMagnitude.every(
          (b, e) => b <= bounds.scoreMagnitude[e] * (1 + 1e-12),
        ),
        `${label}: B above its bound`,
      );
    }
  },
);

gpuTest(
  'combine kernel alone over 1..133 splits, including splits whose lse is -inf',
  (backend) => {
    const random = new Random(SUITE_SEED + 2);
    const splitCounts = [1, 2, 3, 7, 32, 33, 64, 100, 133];
    const batch = splitCounts.length;
    const numHeadsKv = 2;
    const groupSize = 3;
    const seqlenQ = 2;
    const rows = seqlenQ * groupSize;
    const numSplits = new Int32Array(batch + 1);
    for (let i = 0; i < batch; i++) numSplits[i + 1] = numSplits[i] + splitCounts[i];
    const totalSplits = numSplits[batch];
    const oAccum = new Float32Array(totalSplits * numHeadsKv * rows * HEAD_DIM_V).map(() =>
      random.normal(),
    );
    const lseAccum = new Float32Array(totalSplits * numHeadsKv * rows).map(() =>
      random.uniform() < 0.2 ? Number.NEGATIVE_INFINITY : random.normal() * 3,
    );
    // One row of the 3-split sequence has only empty splits: out 0, lse +inf.
    for (let s = numSplits[2]; s < numSplits[3]; s++)
      lseAccum[(s * numHeadsKv + 1) * rows + 4] = Number.NEGATIVE_INFINITY;

    const device = backend.device;
    const up = (t: HostTensor) => DeviceTensor.fromHost(device, t, backend.stream);
    const dNumSplits = up(new HostTensor('int32', numSplits, [batch + 1]));
    const dO = up(new HostTensor('float32', oAccum, [oAccum.length]));
    const dLse = up(new HostTensor('float32', lseAccum, [lseAccum.length]));
    // Whole rows per warp and rows sliced over 4 CTAs: the launcher picks by grid size.
    const run = (channelSlices: number) => {
      const out = DeviceTensor.empty(device, 'bf16', [
        batch,
        seqlenQ,
        numHeadsKv * groupSize,
        HEAD_DIM_V,
      ]);
      const lse = DeviceTensor.empty(device, 'float32', [batch, numHeadsKv * groupSize, seqlenQ]);
      out.fillNaN(backend.stream);
      lse.fillNaN(backend.stream);
      const shape = {
        dtype: 'bf16' as const,
        device: out.device,
        batch,
        seqlenQ,
        numHeadsQ: numHeadsKv * groupSize,
        numHeadsKv,
        groupSize,
        rowsPerKvHead: rows,
        numBlocks: 1,
        maxBlocksPerSeq: 1,
        softmaxScale: 1,
        causal: false,
      };
      const attention = new ParamBlock(AttentionShapeLayout).setAll({
        batch,
        seqlen_q: seqlenQ,
        num_heads_q: shape.numHeadsQ,
        num_heads_kv: numHeadsKv,
        group_size: groupSize,
        rows_per_kv_head: rows,
        out_batch_stride: out.strides[0],
        out_row_stride: out.strides[1],
        out_head_stride: out.strides[2],
      }).bytes;
      launchCombine(backend.kernels, backend.stream, {
        shape,
        attention,
        numSplits: dNumSplits.ptr,
        oAccum: dO.ptr,
        lseAccum: dLse.ptr,
        out: out.ptr,
        lse: lse.ptr,
        channelSlices,
      });
      const result = { out: out.toHostSync(), lse: lse.toHostSync() };
      out.dispose();
      lse.dispose();
      return result;
    };
    const { out: gotOut, lse: gotLse } = run(1);
    const sliced = run(4);
    for (const t of [dNumSplits, dO, dLse]) t.dispose();
    assert.ok(
      gotOut.data.every((x, e) => Object.is(x, sliced.out.data[e])) &&
        gotLse.data.every((x, e) => Object.is(x, sliced.lse.data[e])),
      'sliced rows give the same bits',
    );

    for (let i = 0; i < batch; i++) {
      if (splitCounts[i] === 1) {
        // Single-split sequences are the decode kernel's to write: the combine leaves them alone.
        assert.ok(Number.isNaN(gotLse.get(i, 0, 0)), 'a one-split sequence is not touched');
        continue;
      }
      for (let kv = 0; kv < numHeadsKv; kv++) {
        for (let m = 0; m < rows; m++) {
          const at = (s: number) => ((numSplits[i] + s) * numHeadsKv + kv) * rows + m;
          let max = Number.NEGATIVE_INFINITY;
          for (let s = 0; s < splitCounts[i]; s++) max = Math.max(max, lseAccum[at(s)]);
          const head = kv * groupSize + (m % groupSize);
          const q = Math.floor(m / groupSize);
          if (max === Number.NEGATIVE_INFINITY) {
            assert.equal(gotLse.get(i, head, q), Number.POSITIVE_INFINITY);
            assert.equal(gotOut.get(i, q, head, 0), 0);
            continue;
          }
          let sum = 0;
          for (let s = 0; s < splitCounts[i]; s++) sum += Math.exp(lseAccum[at(s)] - max);
          const wantLse = max + Math.log(sum);
          assert.ok(
            Math.abs(gotLse.get(i, head, q) - wantLse) <= 1e-5 * Math.max(1, Math.abs(wantLse)),
            `lse of sequence ${i} row ${m}`,
          );
          for (let c = 0; c < HEAD_DIM_V; c++) {
            let want = 0;
            for (let s = 0; s < splitCounts[i]; s++)
              want += Math.exp(lseAccum[at(s)] - wantLse) * oAccum[at(s) * HEAD_DIM_V + c];
            const got = gotOut.get(i, q, head, c);
            assert.ok(
              Math.abs(got - want) <= 8e-4 + Math.abs(want) * (2.01 / 128),
              `out of sequence ${i} row ${m} channel ${c}: ${got} vs ${want}`,
            );
          }
        }
      }
    }
  },
);

gpuTest('a TMA tile copy through a tensor map encoded in TypeScript', (backend) => {
  const rows = 100;
  const cols = 192;
  const values = Array.from({ length: rows * cols }, (_, k) => (k % 251) - 125);
  const host = HostTensor.fromValues('bf16', [rows, cols], values);
  const src = DeviceTensor.fromHost(backend.device, host, backend.stream);
  const dst = DeviceTensor.empty(backend.device, 'bf16', [64, 64]);
  const tensorMap = encodeTensorMapTiled(backend.device, {
    dtype: 'bf16',
    globalAddress: src.ptr,
    globalDims: [cols, rows],
    globalStridesBytes: [cols * 2],
    boxDims: [64, 64],
    swizzle: 'none',
  });
  const x = 64;
  const y = 30;
  launchTmaProbe(backend.kernels, backend.stream, { tensorMap, x, y, dst: dst.ptr });
  const got = dst.toHostSync();
  for (let r = 0; r < 64; r++) {
    for (let c = 0; c < 64; c++) {
      const want = y + r < rows ? host.get(y + r, x + c) : 0; // rows past the tensor read as zero
      assert.equal(got.get(r, c), want, `box element (${r}, ${c})`);
    }
  }
  src.dispose();
  dst.dispose();
});
