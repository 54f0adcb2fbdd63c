/** TESTING.md's edge cases that apply to the host, each its own named test (CPU backend). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flashMlaWithKvcache, getMlaMetadata } from '../../src/api/decode.js';
import { HEAD_DIM_K, HEAD_DIM_V } from '../../src/config.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { generateProblem, type Problem, type ProblemConfig } from '../../src/verify/problems.js';
import {
  assertHostDecodeMatches,
  assertJudgedOk,
  DATA_KIND_CASES,
  decodeOnHost,
} from '../support/decode.js';

const base: ProblemConfig = { batch: 3, seqlenQ: 2, numHeadsQ: 16, numHeadsKv: 1, meanLength: 70 };
const problem = (config: Partial<ProblemConfig>, seed = 1) =>
  generateProblem({ ...base, ...config }, new Random(seed));

test('1. NaN/Inf in unattended rows: tails, spare blocks, and one token of another sequence', () => {
  // The generator poisons tails and spare blocks; poison one attended token of sequence 0 too:
  // its rows turn NaN in both, the other sequences stay finite and correct.
  const p = problem({ lengths: [70, 33, 130], spareBlocks: 3 });
  const block = p.blockTable.get(0, 0);
  p.kCache.set(Number.NaN, block, 5, 0, 0);
  const actual = decodeOnHost(p);
  assertJudgedOk(actual, p, 'poisoned token');
  assert.ok(Number.isNaN(actual.lse.get(0, 0, 0)));
  for (const i of [1, 2]) {
    for (let h = 0; h < 16; h++) assert.ok(Number.isFinite(actual.lse.get(i, h, 1)));
  }
});

test('2. huge, negative and zero block-table entries past each sequence are never used', () => {
  for (const paddingEntry of ['huge', 'negative', 'zero'] as const) {
    assertHostDecodeMatches(problem({ paddingEntry, varlen: 'normal', batch: 5 }), paddingEntry);
  }
});

test('3. zero-length sequences: all, some, first/middle/last, and an empty pool', () => {
  for (const lengths of [
    [0, 0, 0],
    [0, 70, 5],
    [70, 0, 5],
    [70, 5, 0],
  ]) {
    assertHostDecodeMatches(problem({ lengths }), `lengths ${lengths}`);
  }
  const empty = problem({ lengths: [0, 0, 0], spareBlocks: 0 });
  assert.equal(empty.kCache.shape[0], 0, 'an empty pool');
  const { out, lse } = decodeOnHost(empty);
  assert.ok(Array.from(lse.toFloat64Array()).every((x) => x === Number.POSITIVE_INFINITY));
  assert.ok(Array.from(out.toFloat64Array()).every((x) => x === 0));
});

test('4. causal with s_q > L: rows with nothing to attend give out 0, lse +inf', () => {
  const p = problem({ seqlenQ: 4, lengths: [2, 0, 3], causal: true });
  const { out, lse } = decodeOnHost(p);
  assertJudgedOk({ out, lse }, p, 'causal, s_q > L');
  // L = 2, s_q = 4: rows 0 and 1 attend nothing.
  assert.equal(lse.get(0, 3, 0), Number.POSITIVE_INFINITY);
  assert.equal(lse.get(0, 3, 1), Number.POSITIVE_INFINITY);
  assert.ok(Number.isFinite(lse.get(0, 3, 2)));
  assert.equal(out.get(0, 1, 3, 100), 0);
});

test('5. causal with s_q = 1 equals non-causal, bitwise', () => {
  const p = problem({ seqlenQ: 1, varlen: 'normal' });
  const plain = decodeOnHost(p);
  const masked = decodeOnHost({ ...p, causal: true });
  assert.deepEqual(masked.out.data, plain.out.data);
  assert.deepEqual(masked.lse.data, plain.lse.data);
});

test('6. h_q not a multiple of 64, and more than 64 rows per KV head', () => {
  assertHostDecodeMatches(
    problem({ numHeadsQ: 63, numHeadsKv: 3, seqlenQ: 4, lengths: [20, 65, 1] }),
    '63/3',
  );
  assertHostDecodeMatches(
    problem({ numHeadsQ: 9, numHeadsKv: 1, seqlenQ: 16, lengths: [40, 20, 17], causal: true }),
    '144 rows',
  );
});

test('7. lengths at block boundaries, and L = s_q', () => {
  assertHostDecodeMatches(
    problem({ batch: 6, lengths: [1, 63, 64, 65, 127, 128], numHeadsQ: 3 }),
    'boundaries',
  );
  assertHostDecodeMatches(problem({ lengths: [2, 2, 2], causal: true }), 'L = s_q');
});

test('8. one very long sequence among short ones is split and recombined', () => {
  const lengths = [20, 20, 64 * 30 + 7, 20, 1];
  const p = problem({ batch: 5, lengths, numHeadsQ: 4, seqlenQ: 1 });
  const { metadata } = decodeOnHost(p);
  const numSplits = metadata.numSplits as HostTensor;
  assert.ok(numSplits.get(3) - numSplits.get(2) > 10);
  assertHostDecodeMatches(p, 'long among short');
});

test('9. more splits than blocks, splits whose lse is -inf, and many splits', () => {
  // 132 parts for 3 blocks; with causal s_q = 16 the last block's split holds nothing for early rows.
  assertHostDecodeMatches(
    problem({ batch: 1, lengths: [130], seqlenQ: 16, numHeadsQ: 1, causal: true }),
    'empty splits',
  );
  assertHostDecodeMatches(
    problem({ batch: 1, lengths: [64 * 140], seqlenQ: 1, numHeadsQ: 1 }),
    '133 splits',
  );
});

test('10. structured data: q = 0, constant V, one-hot score, very negative scores', () => {
  const p = problem({ lengths: [70, 1, 130] });
  // q = 0: every score equal, out = mean of the attended V rows.
  p.q.data.fill(0);
  assertJudgedOk(decodeOnHost(p), p, 'q = 0');

  // Constant V: out = c wherever something is attended.
  const c = problem({ lengths: [70, 1, 130] }, 2);
  for (let i = 0; i < 3; i++) {
    for (let t = 0; t < c.lengths[i]; t++) {
      const block = c.blockTable.get(i, Math.floor(t / 64));
      for (let ch = 0; ch < HEAD_DIM_V; ch++) c.kCache.set(0.375, block, t % 64, 0, ch);
    }
  }
  const constant = decodeOnHost(c);
  assert.ok(Array.from(constant.out.toFloat64Array()).every((x) => x === 0.375));

  // One-hot: a huge score on one key gives exactly that key's V row.
  const h = problem({ batch: 1, lengths: [100], seqlenQ: 1, numHeadsQ: 1 }, 3);
  h.q.data.fill(0);
  h.q.set(1, 0, 0, 0, HEAD_DIM_K - 1);
  const hot = 77;
  const hotBlock = h.blockTable.get(0, 1);
  h.kCache.set(2000, hotBlock, hot - 64, 0, HEAD_DIM_K - 1);
  const oneHot = decodeOnHost(h);
  for (let ch = 0; ch < HEAD_DIM_V; ch++)
    assert.equal(oneHot.out.get(0, 0, 0, ch), h.kCache.get(hotBlock, hot - 64, 0, ch));

  // q = -alpha * K_0: every score very negative; the answer is still right.
  const n = problem({ batch: 1, lengths: [90], seqlenQ: 1, numHeadsQ: 2 }, 4);
  const block0 = n.blockTable.get(0, 0);
  for (let ch = 0; ch < HEAD_DIM_K; ch++) {
    const value = -40 * n.kCache.get(block0, 0, 0, ch);
    n.q.set(value, 0, 0, 0, ch);
    n.q.set(value, 0, 0, 1, ch);
  }
  n.softmaxScale = 1;
  assertHostDecodeMatches(n, 'very negative');
});

test('13. metadata computed once and reused across layers gives bitwise-equal results', () => {
  const p = problem({ varlen: 'normal', batch: 4 });
  const metadata = getMlaMetadata(p.cacheSeqlens, 32, 1);
  const run = () =>
    flashMlaWithKvcache(
      p.q,
      p.kCache,
      p.blockTable,
      p.cacheSeqlens,
      HEAD_DIM_V,
      metadata.tileSchedulerMetadata,
      metadata.numSplits,
      {
        causal: true,
      },
    );
  const first = run();
  for (let layer = 0; layer < 3; layer++) {
    const again = run();
    assert.deepEqual(again.out.data, first.out.data);
    assert.deepEqual(again.lse.data, first.lse.data);
  }
});

test('14. permuting the batch permutes the outputs', () => {
  const p = problem({ batch: 4, varlen: 'normal' }, 9);
  const order = [2, 0, 3, 1];
  const permuted: Problem = {
    ...p,
    q: gatherBatch(p.q, order),
    blockTable: gatherBatch(p.blockTable.contiguous(), order),
    cacheSeqlens: HostTensor.fromValues(
      'int32',
      [4],
      order.map((i) => p.lengths[i]),
    ),
  };
  const a = decodeOnHost(p);
  const b = decodeOnHost(permuted);
  order.forEach((from, to) => {
    for (let s = 0; s < 2; s++) {
      for (let h = 0; h < 16; h++) {
        const diff = Math.abs(a.lse.get(from, h, s) - b.lse.get(to, h, s));
        assert.ok(diff <= 1e-6 || diff / Math.abs(a.lse.get(from, h, s)) <= 8.01 / 65536);
      }
    }
  });
});

test('every data kind, in both dtypes: gentle, steep (three scales), q x 10, q x 100', () => {
  for (const dtype of ['bf16', 'fp16'] as const) {
    for (const { data, softmaxScale } of DATA_KIND_CASES) {
      const p = problem({ data, dtype, softmaxScale, varlen: 'normal', batch: 2 }, 11);
      assertHostDecodeMatches(p, `${data} ${dtype} scale ${softmaxScale ?? 'default'}`);
    }
  }
});

function gatherBatch(tensor: HostTensor, order: number[]): HostTensor {
  const t = tensor.contiguous();
  const rowSize = t.numel / t.shape[0];
  const out = HostTensor.zeros(t.dtype, t.shape);
  order.forEach((from, to) => {
    out.data.set(t.data.subarray(from * rowSize, (from + 1) * rowSize), to * rowSize);
  });
  return out;
}
