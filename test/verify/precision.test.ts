import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { pairwiseDesign } from '../../src/verify/pairwise.js';
import { comparePrecision } from '../../src/verify/precision.js';

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
  assert.ok(comparePrecision(pair(nan, [1.5, Number.POSITIVE_INFINITY]), pair(nan, [1.5, Number.POSITIVE_INFINITY])).ok);
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
          assert.ok(rows.some((row) => row[x] === vx && row[y] === vy), `${x}=${vx}, ${y}=${vy}`);
        }
      }
    }
  }
  assert.ok(rows.length < 3 * 2 * 2 * 4, 'smaller than the full product');
});
