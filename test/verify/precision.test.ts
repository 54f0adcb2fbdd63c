import assert from 'node:assert/strict';
import { test } from 'node:test';
import { referenceDecode } from '../../src/reference/reference.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { comparePrecision, judgeDecode } from '../../src/verify/precision.js';
import { generateProblem } from '../../src/verify/problems.js';
import { pairwiseDesign } from '../support/pairwise.js';

function pair(values: number[], lses: number[]) {
  return {
    out: HostTensor.fromValues('bf16', [1, 1, 1, values.length], values),
    lse: HostTensor.fromValues('float32', [1, 1, lses.length], lses),
  };
}

test('the precision rule accepts rounding noise and rejects real errors', () => {
  const random = new Random(1);
  const values = Array.from({ length: 512 }, () => random.normal() / 10);
  const reference = pair(values, [1.5, Number.POSITIVE_INFINITY]);
  assert.ok(comparePrecision(pair(values, [1.5, Number.POSITIVE_INFINITY]), reference).ok);
  // One element off by 1e-2: fails the element test.
  const wrong = [...values];
  wrong[100] += 1e-2;
  const report = comparePrecision(pair(wrong, [1.5, Number.POSITIVE_INFINITY]), reference);
  assert.ok(!report.ok);
  assert.match(report.failures[0], /^out\[100\]/);
  // lse off by 1e-3 at 1.5 (relative 6.7e-4 > 1.2e-4): fails.
  assert.ok(!comparePrecision(pair(values, [1.501, Number.POSITIVE_INFINITY]), reference).ok);
  // Inf must be where the reference has it, NaN too.
  assert.ok(!comparePrecision(pair(values, [1.5, 3]), reference).ok);
  const nan = [...values];
  nan[7] = Number.NaN;
  assert.ok(!comparePrecision(pair(nan, [1.5, Number.POSITIVE_INFINITY]), reference).ok);
  assert.ok(
    comparePrecision(
      pair(nan, [1.5, Number.POSITIVE_INFINITY]),
      pair(nan, [1.5, Number.POSITIVE_INFINITY]),
    ).ok,
  );
  // Many small errors within per-element tolerance but all of one sign fail the cosine test.
  const drifted = values.map((x) => x * 1.01);
  assert.ok(!comparePrecision(pair(drifted, [1.5, Number.POSITIVE_INFINITY]), reference).ok);
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

test('judgeDecode: the fixed rule where a bf16-P kernel can meet it, the low-precision rule where it cannot', () => {
  // N(0,1) data with scale 192^-0.5: steep softmax, where rounding P to bf16 alone breaks the fixed rule.
  const steep = generateProblem(
    {
      batch: 1,
      seqlenQ: 4,
      numHeadsQ: 9,
      numHeadsKv: 1,
      meanLength: 63,
      data: 'normal',
      softmaxScale: 192 ** -0.5,
    },
    new Random(0),
  );
  const exact = referenceDecode(steep);
  const low = referenceDecode(steep, 'low');
  assert.ok(
    !comparePrecision(low, exact).ok,
    'the low-precision model itself misses the fixed rule here',
  );
  const asLow = judgeDecode(low, steep, exact);
  assert.ok(asLow.ok, asLow.summary);
  assert.equal(asLow.rule, 'low-precision');
  // Twice the model's error still passes the max bound but not the mean bound: scaled noise fails.
  const noisy = low.out.contiguous();
  const bits = noisy.data as Uint16Array;
  for (let e = 0; e < bits.length; e += 3) bits[e] ^= 0x0004; // flip a low mantissa bit of a third of the elements
  assert.ok(!judgeDecode({ out: noisy, lse: low.lse }, steep, exact).ok);
  // A wrong lse is not excused, nor an Inf where the reference has none.
  const lse = low.lse.contiguous();
  lse.data[0] += 0.01;
  assert.ok(!judgeDecode({ out: low.out, lse }, steep, exact).ok);
  const inf = low.out.contiguous();
  inf.set(Number.POSITIVE_INFINITY, 0, 0, 0, 0);
  const misplaced = judgeDecode({ out: inf, lse: low.lse }, steep, exact);
  assert.ok(!misplaced.ok);
  assert.equal(misplaced.rule, 'fixed');

  // Small data: the model meets the fixed rule, so a result must too.
  const easy = generateProblem(
    { batch: 1, seqlenQ: 4, numHeadsQ: 9, numHeadsKv: 1, meanLength: 63 },
    new Random(1),
  );
  const easyExact = referenceDecode(easy);
  const easyLow = referenceDecode(easy, 'low');
  assert.equal(judgeDecode(easyLow, easy, easyExact).rule, 'fixed');
  const off = easyExact.out.contiguous();
  (off.data as Uint16Array)[10] ^= 0x0040;
  const verdict = judgeDecode({ out: off, lse: easyExact.lse }, easy, easyExact);
  assert.ok(!verdict.ok);
  assert.equal(verdict.rule, 'fixed');
});
