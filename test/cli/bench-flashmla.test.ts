import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compareWithFlashMla,
  findReference,
  geomean,
  SLOW_RATIO,
} from '../../src/cli/bench/compare.js';
import {
  FLASHMLA_SMALL,
  FLASHMLA_STANDARD,
  H100_CARD,
  H200_CARD,
  referenceTable,
} from '../../src/cli/bench/flashmla-reference.js';
import {
  type BenchRowConfig,
  buildMatrix,
  buildSmallMatrix,
  countWork,
  SMALL_MATRIX,
  STANDARD_MATRIX,
} from '../../src/cli/bench/matrix.js';
import { describeComparison } from '../../src/cli/bench/report.js';
import { Random } from '../../src/tensor/random.js';
import { drawLengths } from '../../src/verify/problems.js';

const H100 = 'NVIDIA H100 80GB HBM3';
const H200 = 'NVIDIA H200';

test('FlashMLA’s figures: BENCHMARK.md’s 48 rows on H100 and H200, its 20 small-batch rows on H100', () => {
  assert.deepEqual([H100_CARD, H200_CARD], [H100, H200]);
  // Row for row the matrices our bench runs, in their order.
  assert.equal(FLASHMLA_STANDARD.rows.length, 48);
  assert.deepEqual(
    FLASHMLA_STANDARD.rows.map((row) => row.config),
    buildMatrix(STANDARD_MATRIX),
  );
  assert.equal(FLASHMLA_SMALL.rows.length, 20);
  assert.deepEqual(
    FLASHMLA_SMALL.rows.map((row) => row.config),
    buildSmallMatrix(SMALL_MATRIX),
  );
  assert.deepEqual(FLASHMLA_STANDARD.cards, [H100, H200]);
  assert.deepEqual(FLASHMLA_SMALL.cards, [H100]);
  const figures = [...FLASHMLA_STANDARD.rows, ...FLASHMLA_SMALL.rows].flatMap((row) =>
    Object.values(row.figures),
  );
  assert.equal(figures.length, 48 + 48 + 20);
  for (const table of [FLASHMLA_STANDARD, FLASHMLA_SMALL]) {
    assert.equal(table.date, '2026-11-28');
    assert.equal(table.seed, 0);
    assert.match(table.kernel, /FlashMLA 2025-04.*Hopper.*sm_90a.*nvcc 13\.0/);
    for (const row of table.rows) assert.deepEqual(Object.keys(row.figures), table.cards);
  }
  assert.match(FLASHMLA_STANDARD.method, /5 warm-up calls.*30 back-to-back.*median/);
  assert.match(FLASHMLA_SMALL.method, /20 back-to-back.*one CUDA graph.*5 warm-up, 50 timed.*20/);
  assert.equal(referenceTable('standard'), FLASHMLA_STANDARD);
  assert.equal(referenceTable('small'), FLASHMLA_SMALL);

  // Spot checks against BENCHMARK.md's tables: first, a middle and the last row.
  const standard = (i: number) => FLASHMLA_STANDARD.rows[i].figures;
  assert.deepEqual(standard(0), {
    [H100]: { us: 210, tflops: 87, gbps: 2900 },
    [H200]: { us: 146, tflops: 125, gbps: 4173 },
  });
  assert.deepEqual(standard(31), {
    [H100]: { us: 882, tflops: 635, gbps: 1394 },
    [H200]: { us: 884, tflops: 634, gbps: 1392 },
  });
  assert.deepEqual(standard(47), {
    [H100]: { us: 1840, tflops: 609, gbps: 1299 },
    [H200]: { us: 1764, tflops: 635, gbps: 1354 },
  });
  assert.deepEqual(
    FLASHMLA_SMALL.rows.map((row) => row.figures[H100].us),
    [
      15.1, 17.5, 28.3, 33.4, 16.1, 15.9, 18.2, 18.1, 34.4, 32.7, 38.9, 39.0, 18.8, 20.1, 24.4,
      25.9, 63.5, 62.8, 74.5, 76.8,
    ],
  );
});

test('every FlashMLA TFLOPS and GB/s figure agrees with its µs on the lengths our generator draws with seed 0', () => {
  // The figures were measured on our lengths: FLOPs and bytes of the seed-0 lengths over the
  // µs give the recorded rates, up to the rounding of the µs (to 1) and of the rates (to 1).
  for (const row of FLASHMLA_STANDARD.rows) {
    const { batch, meanLength, varlen, seqlenQ, numHeadsQ, numHeadsKv } = row.config;
    const lengths = drawLengths(
      new Random(FLASHMLA_STANDARD.seed),
      batch,
      meanLength,
      varlen ? 'normal' : 'off',
      seqlenQ,
    );
    const work = countWork(lengths, seqlenQ, numHeadsQ, numHeadsKv);
    for (const [card, figure] of Object.entries(row.figures)) {
      const tflops = work.flops / figure.us / 1e6;
      const gbps = work.bytes / figure.us / 1e3;
      const where = `${card} ${meanLength}/h${numHeadsQ}/s${seqlenQ}${varlen ? '/v' : ''}`;
      assert.ok(Math.abs(tflops - (figure.tflops ?? 0)) <= 0.5 + tflops * (0.5 / figure.us), where);
      assert.ok(Math.abs(gbps - (figure.gbps ?? 0)) <= 0.5 + gbps * (0.5 / figure.us), where);
    }
  }
});

/** The standard matrix's first row (4096/h16/s1, fixed lengths) with some fields changed. */
function config(changes: Partial<BenchRowConfig> = {}): BenchRowConfig {
  return { ...buildMatrix(STANDARD_MATRIX)[0], ...changes };
}

test('a row has a FlashMLA figure only with the same shape, on the same card, with the same lengths', () => {
  assert.deepEqual(findReference(FLASHMLA_STANDARD, H100, config(), 0), {
    us: 210,
    tflops: 87,
    gbps: 2900,
  });
  assert.equal(findReference(FLASHMLA_STANDARD, H200, config(), 0)?.us, 146);
  assert.equal(findReference(FLASHMLA_STANDARD, H100, config({ varlen: true }), 0)?.us, 210);
  // Fixed lengths do not depend on the seed; variable ones differ with it.
  assert.equal(findReference(FLASHMLA_STANDARD, H100, config(), 7)?.us, 210);
  assert.equal(findReference(FLASHMLA_STANDARD, H100, config({ varlen: true }), 7), null);
  for (const changed of [
    { batch: 64 },
    { meanLength: 2048 },
    { numHeadsQ: 8 },
    { numHeadsKv: 2 },
    { seqlenQ: 3 },
    { causal: false },
    { dtype: 'fp16' as const },
  ])
    assert.equal(findReference(FLASHMLA_STANDARD, H100, config(changed), 0), null);
  // Device names must match exactly: other H100 and H200 models are other cards.
  for (const card of ['NVIDIA H100 PCIe', 'NVIDIA H200 NVL', 'nvidia h200', 'NVIDIA H100'])
    assert.equal(findReference(FLASHMLA_STANDARD, card, config(), 0), null);
  // Small-batch rows belong to the small-batch table only (they are graph-timed).
  const small = config({ batch: 4, meanLength: 1024, varlen: true });
  assert.equal(findReference(FLASHMLA_SMALL, H100, small, 0)?.us, 15.9);
  assert.equal(findReference(FLASHMLA_SMALL, H200, small, 0), null);
  assert.equal(findReference(FLASHMLA_STANDARD, H100, small, 0), null);
});

test('geomean, and the comparison’s ratios, counts and reasons', () => {
  assert.ok(Math.abs(geomean([2, 8]) - 4) < 1e-12);
  assert.ok(Math.abs(geomean([0.5, 2]) - 1) < 1e-12);
  assert.equal(SLOW_RATIO, 0.97);

  const row = (changes: Partial<BenchRowConfig>, medianUs: number, ok = true) => ({
    config: config(changes),
    medianUs,
    ok,
  });
  // FlashMLA on the H200: 146 (4096/h16/s1), 147 (/v), 146 (s2), 158 (s2/v) µs.
  const rows = [
    row({}, 73), // 2.00
    row({ varlen: true }, 150), // 0.98: below 1 only
    row({ seqlenQ: 2 }, 150), // 0.973: below 1 only
    row({ seqlenQ: 2, varlen: true }, 316), // 0.50
    row({ batch: 64 }, 100), // no figure
    row({ numHeadsQ: 32 }, 147 / 4, false), // 4.00, but failed its check
  ];
  const comparison = compareWithFlashMla({
    suite: 'standard',
    backendKind: 'cuda',
    card: H200,
    seed: 0,
    rows,
  });
  assert.ok(comparison.available);
  assert.equal(comparison.reference.card, H200);
  assert.equal(comparison.reference.date, '2026-11-28');
  assert.deepEqual(
    comparison.rows.map((r) => r?.flashmlaUs ?? null),
    [146, 147, 146, 158, null, 147],
  );
  comparison.rows.forEach((r, i) => {
    if (r !== null) assert.ok(Math.abs(r.ratio - r.flashmlaUs / rows[i].medianUs) < 1e-12);
  });
  const { summary } = comparison;
  assert.equal(summary.compared, 4);
  assert.equal(summary.failedLeftOut, 1);
  assert.ok(
    Math.abs((summary.geomean ?? 0) - (2 * (147 / 150) * (146 / 150) * 0.5) ** 0.25) < 1e-12,
  );
  assert.ok(Math.abs((summary.min ?? 0) - 0.5) < 1e-12);
  assert.ok(Math.abs((summary.max ?? 0) - 2) < 1e-12);
  assert.equal(summary.belowSlowRatio, 1);
  assert.equal(summary.belowOne, 3);
  const lines = describeComparison(comparison);
  assert.equal(lines.length, 3);
  assert.equal(
    lines[2],
    'geomean 0.99× over 4 rows (of 6: FlashMLA has no figure for the others), from 0.50× to 2.00×; below 0.97×: 1 row; below 1.00×: 3 rows; 1 row that failed its check left out',
  );

  const reason = (run: Partial<Parameters<typeof compareWithFlashMla>[0]>) => {
    const result = compareWithFlashMla({
      suite: 'standard',
      backendKind: 'cuda',
      card: H100,
      seed: 0,
      rows,
      ...run,
    });
    assert.ok(!result.available);
    assert.deepEqual(describeComparison(result), [`vs FlashMLA: not shown: ${result.reason}`]);
    return result.reason;
  };
  assert.equal(
    reason({ backendKind: 'cpu', card: 'CPU Some Xeon' }),
    "the CPU backend runs here, and FlashMLA's figures are GPU times (NVIDIA H100 80GB HBM3 and NVIDIA H200)",
  );
  assert.equal(
    reason({ card: 'NVIDIA A100-SXM4-80GB' }),
    "FlashMLA's figures were measured on NVIDIA H100 80GB HBM3 and NVIDIA H200, not on NVIDIA A100-SXM4-80GB",
  );
  assert.equal(
    reason({ suite: 'small', card: H200 }),
    "FlashMLA's small-batch figures were measured on NVIDIA H100 80GB HBM3, not on NVIDIA H200",
  );
  assert.match(
    reason({ rows: [row({ batch: 64 }, 100), row({ dtype: 'fp16' }, 100)] }),
    /^no row of this run is one FlashMLA's figures cover \(b 128; .*variable lengths with seed 0\)$/,
  );
  // Every row with a figure failed: the column stays, the summary says there is no score.
  const failed = compareWithFlashMla({
    suite: 'standard',
    backendKind: 'cuda',
    card: H100,
    seed: 0,
    rows: [row({}, 100, false)],
  });
  assert.ok(failed.available);
  assert.equal(failed.summary.geomean, null);
  assert.equal(
    describeComparison(failed)[2],
    'no row with a FlashMLA figure passed its check; 1 row that failed its check left out',
  );
});
