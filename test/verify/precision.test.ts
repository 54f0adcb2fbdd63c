import assert from 'node:assert/strict';
import { test } from 'node:test';
import { roundToBf16 } from '../../src/tensor/half.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { comparePrecision, type JudgedReference } from '../../src/verify/precision.js';
import { pairwiseDesign } from '../support/pairwise.js';

/** Two rows of one batch, one query token, two heads: out [1, 1, 2, 512], lse [1, 2, 1]. */
function reference(
  rows: number[][],
  lses: number[],
  absWeightedV: number | number[],
  scoreMagnitude = [0, 0],
  dtype: 'bf16' | 'fp16' = 'bf16',
): JudgedReference {
  return {
    out: HostTensor.fromValues(dtype, [1, 1, 2, 512], rows.flat()),
    lse: HostTensor.fromValues('float32', [1, 2, 1], lses),
    errorScales: {
      absWeightedV: Float64Array.from(
        typeof absWeightedV === 'number' ? rows.flat().map(() => absWeightedV) : absWeightedV,
      ),
      scoreMagnitude: Float64Array.from(scoreMagnitude),
    },
  };
}

/** A result in float32, so that the errors made here are exactly the ones intended. */
function actual(rows: number[][], lses: number[]) {
  return {
    out: HostTensor.fromValues('float32', [1, 1, 2, 512], rows.flat()),
    lse: HostTensor.fromValues('float32', [1, 2, 1], lses),
  };
}

// bf16 values within ±0.25, so the reference holds them exactly.
const random = new Random(1);
const rowValues = () =>
  Array.from({ length: 512 }, () =>
    roundToBf16(Math.max(-0.25, Math.min(0.25, random.normal() / 10))),
  );
const rows = [rowValues(), rowValues()];
rows[1][100] = 0.125;

test('out elements: |a - r| <= eps (|r| + A), named by batch, token, head and column', () => {
  const ref = reference(rows, [1.5, 2], 0.05);
  assert.ok(comparePrecision(actual(rows, [1.5, 2]), ref).ok);
  // 1/32 off at |r| = 0.125, A = 0.05: beyond 2^-7 * 0.175 = 1.37e-3.
  const wrong = rows.map((row) => [...row]);
  wrong[1][100] += 1 / 32;
  const report = comparePrecision(actual(wrong, [1.5, 2]), ref);
  assert.ok(!report.ok);
  assert.equal(report.element.beyond, 1);
  assert.match(
    report.failures[0],
    /^out\[b=0, s=0, h=1, c=100\]: got 0\.15625, want 0\.125, error 3\.125e-2 > bound 1\.367e-3 \(22\.9x\); 1 elements of out beyond their bound$/,
  );
  // The same error is within bounds where rounding P could move the element that far: A = 4.
  const scales = rows.flat().map(() => 0.05);
  scales[512 + 100] = 4;
  const tolerant = comparePrecision(actual(wrong, [1.5, 2]), reference(rows, [1.5, 2], scales));
  assert.ok(tolerant.element.ratio <= 1, tolerant.failures.join('\n'));
});

test('out elements: large scores widen the bound by the score error lse admits, 2 sigma B A', () => {
  // 2^-8 off at |r| = 0.125, A = 0.05: beyond eps (|r| + A) = 1.37e-3 with small scores...
  const wrong = rows.map((row) => [...row]);
  wrong[1][100] += 2 ** -8;
  const small = comparePrecision(actual(wrong, [1.5, 2]), reference(rows, [1.5, 2], 0.05, [0, 3]));
  assert.equal(small.element.beyond, 1);
  // ...within it when row 1's scores reach B = 30000: 2 * 2^-20 * 30000 * 0.05 = 2.86e-3 more.
  const large = comparePrecision(
    actual(wrong, [1.5, 2]),
    reference(rows, [1.5, 2], 0.05, [0, 30000]),
  );
  assert.ok(large.ok, large.failures.join('\n'));
  assert.ok(large.element.ratio > 0.9, `ratio ${large.element.ratio}`);
  // B is per row: row 0's does not widen row 1's bound.
  const other = comparePrecision(
    actual(wrong, [1.5, 2]),
    reference(rows, [1.5, 2], 0.05, [30000, 3]),
  );
  assert.equal(other.element.beyond, 1);
});

test('fp16 below its smallest normal (2^-14): rounding steps are fixed, one step is allowed', () => {
  // Out values of 4 and 40 subnormal steps (2^-24 each), A tiny: relative bounds would allow nothing.
  const step = 2 ** -24;
  const tiny = [rows[0].map(() => 4 * step), rows[1].map(() => 40 * step)];
  const ref = reference(tiny, [1.5, 2], 1e-9, [0, 0], 'fp16');
  const oneStep = [tiny[0].map((x) => x + step), tiny[1].map((x) => x - step)];
  // The rows' rms is below 2^-14 too: no cosine checks, whose relative view cannot hold there.
  const report = comparePrecision(actual(oneStep, [1.5, 2]), ref);
  assert.ok(report.ok, report.failures.join('\n'));
  const twoSteps = [tiny[0].map((x) => x + 2 * step), tiny[1]];
  assert.equal(comparePrecision(actual(twoSteps, [1.5, 2]), ref).element.beyond, 512);
});

test('rows and the whole tensor: small errors of one sign fail the cosine checks', () => {
  const ref = reference(rows, [1.5, 2], 0.1);
  // 1% too large everywhere: within each element's bound (2^-7 (|r| + 0.1) > 1% |r|)...
  const drifted = rows.map((row) => row.map((x) => x * 1.01));
  const report = comparePrecision(actual(drifted, [1.5, 2]), ref);
  assert.equal(report.element.beyond, 0);
  // ...but the angle to the reference is too large: 1 - 2(1.01)/(1 + 1.01^2) = 5e-5 per row.
  assert.equal(report.row.beyond, 2);
  assert.equal(report.tensor.beyond, 1);
  assert.match(
    report.failures[0],
    /^out\[b=0, s=0, h=\d, c=:\]: cosine distance 4\.95\de-5 > bound 2\.000e-5 \(2\.48x\); 2 rows of out beyond/,
  );
  // One row drifted 0.4%: its cosine (8e-6) passes 2e-5, the tensor's (4e-6) passes 5e-6.
  const one = [rows[0].map((x) => x * 1.004), rows[1]];
  const mild = comparePrecision(actual(one, [1.5, 2]), ref);
  assert.ok(mild.ok, mild.failures.join('\n'));
  assert.ok(mild.row.ratio > 0.3 && mild.tensor.ratio > 0.3);
  // Rows of tiny reference values (sum of squares < 1e-12) have no angle to check.
  const tiny = [rows[0].map(() => 1e-8), rows[1]];
  const skewed = [rows[0].map(() => 2e-8), rows[1]];
  const skipped = comparePrecision(actual(skewed, [1.5, 2]), reference(tiny, [1.5, 2], 1e-5));
  assert.ok(skipped.ok, skipped.failures.join('\n'));
});

test('lse: within max(1e-6, 8.01/65536 |r|, 2^-20 B)', () => {
  const ref = reference(rows, [1.5, 1e-3], 0.05, [0, 0]);
  assert.ok(comparePrecision(actual(rows, [1.5 + 1.5e-4, 1e-3 + 9e-7]), ref).ok);
  const report = comparePrecision(actual(rows, [1.5 + 2e-4, 1e-3]), ref);
  assert.ok(!report.ok);
  assert.match(
    report.failures[0],
    /^lse\[b=0, h=0, s=0\]: got .*error 2\.\d+e-4 > bound 1\.83\de-4/,
  );
  // lse near 0 from large scores: float32 scores err by ~2^-24 of their size, so B widens it.
  const nearZero = reference(rows, [1.5, 1e-3], 0.05, [0, 500]);
  assert.ok(comparePrecision(actual(rows, [1.5, 1e-3 + 4e-4]), nearZero).ok);
  assert.ok(!comparePrecision(actual(rows, [1.5, 1e-3 + 6e-4]), nearZero).ok);
});

test('Inf and NaN sit exactly where the reference has them; rows with nothing attended are exact', () => {
  const empty = [rows[0], rows[1].map(() => 0)];
  const ref = reference(empty, [1.5, Number.POSITIVE_INFINITY], 0.05);
  for (let e = 512; e < 1024; e++) ref.errorScales.absWeightedV[e] = 0;
  assert.ok(comparePrecision(actual(empty, [1.5, Number.POSITIVE_INFINITY]), ref).ok);
  // lse finite where the reference has +inf, or the reverse.
  for (const lses of [
    [1.5, 3],
    [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
  ]) {
    const report = comparePrecision(actual(empty, lses), ref);
    assert.equal(report.misplaced, 1);
    assert.match(report.failures[0], /^lse\[b=0, h=\d, s=0\]: got .*, want .*; Inf\/NaN must sit/);
  }
  // NaN in out where the reference is finite; and out != 0 on a row with nothing attended.
  const nan = empty.map((row) => [...row]);
  nan[0][7] = Number.NaN;
  assert.match(
    comparePrecision(actual(nan, [1.5, Number.POSITIVE_INFINITY]), ref).failures[0],
    /^out\[b=0, s=0, h=0, c=7\]: got NaN, want/,
  );
  const leaked = empty.map((row) => [...row]);
  leaked[1][3] = 1e-6;
  const report = comparePrecision(actual(leaked, [1.5, Number.POSITIVE_INFINITY]), ref);
  assert.equal(report.element.ratio, Number.POSITIVE_INFINITY);
  // A NaN row in the reference (NaN in q) must be NaN in the result too, and is then a match.
  const nanRow = [rows[0].map(() => Number.NaN), rows[1]];
  const nanRef = reference(nanRow, [Number.NaN, 2], 0.05);
  assert.ok(comparePrecision(actual(nanRow, [Number.NaN, 2]), nanRef).ok);
  assert.ok(!comparePrecision(actual(rows, [Number.NaN, 2]), nanRef).ok);
});

test('a 16-bit result is read the same in any layout: contiguous, at an offset, padded', () => {
  const ref = reference(rows, [1.5, 2], 0.05);
  const wrong = rows.map((row) => [...row]);
  wrong[1][100] += 1 / 32;
  const lse = HostTensor.fromValues('float32', [1, 2, 1], [1.5, 2]);
  const contiguous = HostTensor.fromValues('bf16', [1, 1, 2, 512], wrong.flat());
  // The same values one row further into a larger buffer, and with rows padded to 576.
  const shifted = HostTensor.fromValues('bf16', [3, 512], [rows[0], ...wrong].flat());
  const atOffset = shifted.view([1, 1, 2, 512], [1024, 1024, 512, 1], 512);
  const padded = HostTensor.padded('bf16', [1, 1, 2, 512], [1, 1, 2, 576]);
  for (let h = 0; h < 2; h++) for (let c = 0; c < 512; c++) padded.set(wrong[h][c], 0, 0, h, c);
  assert.ok(atOffset.isContiguous() && !padded.isContiguous());
  const reports = [contiguous, atOffset, padded].map((out) => comparePrecision({ out, lse }, ref));
  for (const report of reports) {
    assert.equal(report.element.beyond, 1);
    assert.equal(report.element.at, 'out[b=0, s=0, h=1, c=100]');
    assert.deepEqual(report, reports[0]);
  }
});

test('a result whose shape differs from the reference is refused, not judged', () => {
  const ref = reference(rows, [1.5, 2], 0.05);
  const short = HostTensor.fromValues('float32', [1, 1, 1, 512], rows[0]);
  assert.throws(
    () => comparePrecision({ out: short, lse: actual(rows, [1.5, 2]).lse }, ref),
    /actual\.out.*\[1, 1, 2, 512\]/,
  );
  const lse = HostTensor.fromValues('float32', [1, 1, 2], [1.5, 2]);
  assert.throws(() => comparePrecision({ out: actual(rows, [1.5, 2]).out, lse }, ref), {
    name: 'ShapeError',
  });
});

test('a pairwise design covers every pair of values, and honours the validity rule', () => {
  const factors = { a: [1, 2, 3], b: ['x', 'y'], c: [true, false], d: [10, 20, 30, 40] };
  const rows = pairwiseDesign(factors, new Random(2), (row) => !(row.a === 3 && row.d === 40));
  assert.ok(rows.every((row) => !(row.a === 3 && row.d === 40)));
  const names = Object.keys(factors) as (keyof typeof factors)[];
  for (const x of names) {
    for (const y of names) {
      if (x >= y) continue;
      for (const vx of factors[x]) {
        for (const vy of factors[y]) {
          if (x === 'a' && y === 'd' && vx === 3 && vy === 40) continue;
          assert.ok(
            rows.some((row) => row[x] === vx && row[y] === vy),
            `${x}=${vx}, ${y}=${vy}`,
          );
        }
      }
    }
  }
  assert.ok(rows.length < 3 * 2 * 2 * 4, 'smaller than the full product');
});
