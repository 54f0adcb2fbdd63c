/**
 * The decode + combine kernels through the public API against the float64 reference under the
 * precision rule: every value of every TESTING.md dimension, all pairs of values by a pairwise
 * design, the edge cases, every data kind, bitwise determinism and metadata reuse. Fresh seeds
 * each run.
 */
import assert from 'node:assert/strict';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_K, HEAD_DIM_V } from '../../src/config.js';
import type { CudaBackend } from '../../src/cuda-backend/backend.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { judgeDecode } from '../../src/verify/precision.js';
import {
  DATA_KIND_NAMES,
  generateProblem,
  type Problem,
  type ProblemConfig,
} from '../../src/verify/problems.js';
import { DATA_KIND_CASES, describeProblem } from '../support/decode.js';
import { pairwiseDesign } from '../support/pairwise.js';
import { decodeOnGpu, gpuTest, SUITE_SEED, uploadProblem } from './support.js';

const HEAD_LAYOUTS = [
  [1, 1],
  [3, 1],
  [3, 3],
  [9, 1],
  [9, 3],
  [16, 1],
  [16, 2],
  [32, 8],
  [63, 3],
  [64, 1],
  [64, 2],
  [64, 8],
  [126, 2],
  [126, 3],
  [128, 1],
  [128, 8],
] as const;

function check(backend: CudaBackend, problem: Problem, label: string) {
  const onGpu = uploadProblem(backend, problem);
  try {
    const result = decodeOnGpu(backend, onGpu, label);
    const verdict = judgeDecode(result, problem);
    assert.ok(
      verdict.ok,
      `${label} (seed ${SUITE_SEED}) ${describeProblem(problem)}: ${verdict.summary}\n${verdict.report.failures.join('\n')}`,
    );
    const numSplits = result.metadata.numSplits.toHostSync();
    result.metadata.dispose();
    return { out: result.out, lse: result.lse, numSplits };
  } finally {
    onGpu.dispose();
  }
}

gpuTest(
  'pairwise design over b, s_q, length, heads, causal, varlen, dtype, strides, padding, scale',
  (backend) => {
    const random = new Random(SUITE_SEED);
    const rows = pairwiseDesign(
      {
        batch: [1, 2, 6, 64],
        seqlenQ: [1, 2, 3, 4, 8, 16],
        meanLength: [0, 1, 20, 63, 64, 65, 127, 128, 140, 600],
        heads: HEAD_LAYOUTS,
        causal: [false, true],
        varlen: ['off', 'normal', 'half-empty'] as const,
        dtype: ['bf16', 'fp16'] as const,
        paddedStrides: [false, true],
        paddingEntry: ['huge', 'negative', 'zero'] as const,
        softmaxScale: [undefined, 0.5, 192 ** -0.5],
        data: DATA_KIND_NAMES,
      },
      random,
      // The CPU reference must keep up: bound query rows x keys.
      (row) => row.batch * row.seqlenQ * row.heads[0] * Math.max(row.meanLength, 1) <= 400_000,
    );
    rows.forEach((row, i) => {
      const config: ProblemConfig = { ...row, numHeadsQ: row.heads[0], numHeadsKv: row.heads[1] };
      check(backend, generateProblem(config, random), `pairwise row ${i}`);
    });
  },
);

const base: ProblemConfig = { batch: 3, seqlenQ: 2, numHeadsQ: 16, numHeadsKv: 1, meanLength: 70 };
const problem = (config: Partial<ProblemConfig>, salt: number) =>
  generateProblem({ ...base, ...config }, new Random(SUITE_SEED + salt));

gpuTest('edge 1: NaN/Inf in unattended rows (tails, spare blocks, another sequence)', (backend) => {
  const p = problem({ lengths: [70, 33, 130], spareBlocks: 5, varlen: 'normal' }, 1);
  p.kCache.set(Number.NaN, p.blockTable.get(0, 0), 5, 0, 0);
  const result = check(backend, p, 'edge 1');
  for (const i of [1, 2])
    for (let h = 0; h < 16; h++) assert.ok(Number.isFinite(result.lse.get(i, h, 1)));
});

gpuTest('edge 2: huge, negative and zero block-table entries past each sequence', (backend) => {
  for (const paddingEntry of ['huge', 'negative', 'zero'] as const)
    check(backend, problem({ paddingEntry, varlen: 'normal', batch: 6 }, 2), paddingEntry);
});

gpuTest('edge 3: zero-length sequences: all, some, first/middle/last, empty pool', (backend) => {
  for (const lengths of [
    [0, 0, 0],
    [0, 70, 5],
    [70, 0, 5],
    [70, 5, 0],
  ])
    check(backend, problem({ lengths }, 3), `lengths ${lengths}`);
  const empty = problem({ lengths: [0, 0, 0], spareBlocks: 0 }, 3);
  const result = check(backend, empty, 'empty pool');
  assert.ok(Array.from(result.lse.toFloat64Array()).every((x) => x === Number.POSITIVE_INFINITY));
});

gpuTest(
  'edge 4: causal with s_q > L gives out 0, lse +inf on rows with nothing to attend',
  (backend) => {
    const result = check(
      backend,
      problem({ seqlenQ: 4, lengths: [2, 0, 3], causal: true }, 4),
      'edge 4',
    );
    assert.equal(result.lse.get(0, 3, 0), Number.POSITIVE_INFINITY);
    assert.equal(result.out.get(0, 1, 3, 100), 0);
  },
);

gpuTest('edge 5: causal with s_q = 1 equals non-causal, bitwise', (backend) => {
  const p = problem({ seqlenQ: 1, varlen: 'normal', numHeadsQ: 128 }, 5);
  const plain = check(backend, p, 'plain');
  const masked = check(backend, { ...p, causal: true }, 'causal');
  assert.deepEqual(masked.out.data, plain.out.data);
  assert.deepEqual(masked.lse.data, plain.lse.data);
});

gpuTest('edge 6: h_q not a multiple of 64, and several 64-row tiles per KV head', (backend) => {
  check(
    backend,
    problem({ numHeadsQ: 63, numHeadsKv: 3, seqlenQ: 4, lengths: [20, 65, 1] }, 6),
    '63/3',
  );
  check(
    backend,
    problem({ numHeadsQ: 126, numHeadsKv: 1, seqlenQ: 2, lengths: [300, 20, 17], causal: true }, 6),
    '252 rows',
  );
  check(
    backend,
    problem({ numHeadsQ: 9, numHeadsKv: 1, seqlenQ: 16, lengths: [40, 20, 17], causal: true }, 6),
    '144 rows',
  );
});

gpuTest('edge 7: lengths at block boundaries, and L = s_q', (backend) => {
  check(
    backend,
    problem({ batch: 7, lengths: [1, 63, 64, 65, 127, 128, 129], numHeadsQ: 3 }, 7),
    'boundaries',
  );
  check(backend, problem({ lengths: [2, 2, 2], causal: true }, 7), 'L = s_q');
});

gpuTest('edge 8: one very long sequence among short ones is split', (backend) => {
  const result = check(
    backend,
    problem({ batch: 6, lengths: [20, 20, 64 * 150 + 7, 20, 1, 64], numHeadsQ: 16, seqlenQ: 1 }, 8),
    'edge 8',
  );
  assert.ok(result.numSplits.get(3) - result.numSplits.get(2) > 1, 'the long sequence was split');
});

gpuTest('edge 9: more splits than blocks, and splits whose lse is -inf', (backend) => {
  check(
    backend,
    problem({ batch: 1, lengths: [130], seqlenQ: 16, numHeadsQ: 1, causal: true }, 9),
    'empty splits',
  );
  check(
    backend,
    problem({ batch: 1, lengths: [64 * 140], seqlenQ: 1, numHeadsQ: 1 }, 9),
    'many splits',
  );
  check(backend, problem({ batch: 2, lengths: [3, 1], seqlenQ: 1, numHeadsQ: 1 }, 9), 'tiny');
});

gpuTest(
  'edge 10: structured data: q = 0, constant V, one-hot score, very negative scores',
  (backend) => {
    const zero = problem({ lengths: [70, 1, 130] }, 10);
    zero.q.data.fill(0);
    check(backend, zero, 'q = 0');

    const c = problem({ lengths: [70, 1, 130] }, 11);
    for (let i = 0; i < 3; i++) {
      for (let t = 0; t < c.lengths[i]; t++) {
        for (let ch = 0; ch < HEAD_DIM_V; ch++)
          c.kCache.set(0.375, c.blockTable.get(i, Math.floor(t / 64)), t % 64, 0, ch);
      }
    }
    const constant = check(backend, c, 'constant V');
    assert.ok(Array.from(constant.out.toFloat64Array()).every((x) => x === 0.375));

    const h = problem({ batch: 1, lengths: [100], seqlenQ: 1, numHeadsQ: 1 }, 12);
    h.q.data.fill(0);
    h.q.set(1, 0, 0, 0, HEAD_DIM_K - 1);
    const hotBlock = h.blockTable.get(0, 1);
    h.kCache.set(2000, hotBlock, 13, 0, HEAD_DIM_K - 1);
    const hot = check(backend, h, 'one-hot');
    for (let ch = 0; ch < HEAD_DIM_V; ch++)
      assert.equal(hot.out.get(0, 0, 0, ch), h.kCache.get(hotBlock, 13, 0, ch));

    const n = problem({ batch: 1, lengths: [90], seqlenQ: 1, numHeadsQ: 2 }, 13);
    const block0 = n.blockTable.get(0, 0);
    for (let ch = 0; ch < HEAD_DIM_K; ch++) {
      n.q.set(-40 * n.kCache.get(block0, 0, 0, ch), 0, 0, 0, ch);
      n.q.set(-40 * n.kCache.get(block0, 0, 0, ch), 0, 0, 1, ch);
    }
    n.softmaxScale = 1;
    check(backend, n, 'very negative');
  },
);

gpuTest(
  'every data kind, in both dtypes: gentle, steep (three scales), q x 10, q x 100',
  (backend) => {
    for (const dtype of ['bf16', 'fp16'] as const) {
      for (const { data, softmaxScale } of DATA_KIND_CASES) {
        const config = {
          data,
          dtype,
          softmaxScale,
          varlen: 'normal' as const,
          batch: 4,
          numHeadsQ: 64,
        };
        check(backend, problem(config, 14), `${data} ${dtype} scale ${softmaxScale ?? 'default'}`);
      }
    }
  },
);

gpuTest(
  'edge 13 and determinism: metadata reused over 100 calls, bitwise-equal results',
  (backend) => {
    const p = problem(
      {
        varlen: 'normal',
        batch: 6,
        numHeadsQ: 64,
        seqlenQ: 2,
        causal: true,
        lengths: [900, 20, 3000, 1, 0, 640],
      },
      15,
    );
    const onGpu = uploadProblem(backend, p);
    const metadata = getMlaMetadata(onGpu.cacheSeqlens, 128, 1);
    const first = decodeOnGpu(backend, onGpu, 'first', metadata);
    const verdict = judgeDecode(first, p);
    assert.ok(verdict.ok, `seed ${SUITE_SEED}: ${verdict.report.failures.join('\n')}`);
    const out = backend.empty('bf16', [6, 2, 64, HEAD_DIM_V]);
    const lse = backend.empty('float32', [6, 64, 2]);
    for (let call = 0; call < 100; call++) {
      out.fillNaN(backend.stream);
      flashMlaWithKvcache(
        onGpu.q,
        onGpu.kCache,
        onGpu.blockTable,
        onGpu.cacheSeqlens,
        HEAD_DIM_V,
        metadata.tileSchedulerMetadata,
        metadata.numSplits,
        {
          causal: true,
          out,
          lse,
        },
      );
      if (call % 10 === 9) {
        assert.deepEqual(out.toHostSync().data, first.out.data, `call ${call}: out differs`);
        assert.deepEqual(lse.toHostSync().data, first.lse.data, `call ${call}: lse differs`);
      }
    }
    out.dispose();
    lse.dispose();
    metadata.dispose();
    onGpu.dispose();
  },
);

gpuTest('edge 14: permuting the batch permutes the outputs', (backend) => {
  const p = problem({ batch: 4, lengths: [100, 7, 300, 64] }, 16);
  const a = check(backend, p, 'original');
  const order = [2, 0, 3, 1];
  const q = p.q.contiguous();
  const rowSize = q.numel / 4;
  const permutedQ = q.contiguous();
  const table = p.blockTable.contiguous();
  const permutedTable = table.contiguous();
  const tableRow = table.numel / 4;
  order.forEach((from, to) => {
    permutedQ.data.set(q.data.subarray(from * rowSize, (from + 1) * rowSize), to * rowSize);
    permutedTable.data.set(
      table.data.subarray(from * tableRow, (from + 1) * tableRow),
      to * tableRow,
    );
  });
  const lengths = Int32Array.from(order, (i) => p.lengths[i]);
  const permuted = {
    ...p,
    q: permutedQ,
    blockTable: permutedTable,
    cacheSeqlens: new HostTensor('int32', lengths.slice(), [4]),
    lengths,
  };
  const b = check(backend, permuted, 'permuted');
  order.forEach((from, to) => {
    for (let h = 0; h < 16; h++) {
      const x = a.lse.get(from, h, 1);
      const y = b.lse.get(to, h, 1);
      assert.ok(Math.abs(x - y) <= 1e-6 || Math.abs(x - y) / Math.abs(x) <= 8.01 / 65536);
    }
  });
});
