import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DtypeError, ShapeError } from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { contiguousStrides, isContiguous, storageSpan } from '../../src/tensor/tensor.js';

test('contiguous strides, spans and element access', () => {
  assert.deepEqual(contiguousStrides([2, 3, 4]), [12, 4, 1]);
  const t = HostTensor.fromValues('float32', [2, 3], [0, 1, 2, 3, 4, 5]);
  assert.equal(t.get(1, 2), 5);
  t.set(9, 0, 1);
  assert.equal(t.get(0, 1), 9);
  assert.ok(t.isContiguous());
  assert.equal(storageSpan([2, 3], [10, 1]), 13);
});

test('bf16 elements are rounded on the way in', () => {
  const t = HostTensor.fromValues('bf16', [2], [1 + 2 ** -9, -3.3]);
  assert.equal(t.get(0), 1);
  assert.equal(t.get(1), -3.296875);
});

test('padded views keep their strides and fill the padding', () => {
  const t = HostTensor.padded('fp16', [2, 3], [3, 8], Number.NaN);
  assert.deepEqual(t.strides, [8, 1]);
  assert.ok(!isContiguous(t));
  t.set(1.5, 1, 2);
  assert.equal(t.get(1, 2), 1.5);
  assert.ok(Number.isNaN(t.get(0, 0)));
  assert.deepEqual(Array.from(t.contiguous().toFloat64Array()).slice(5), [1.5]);
  assert.equal(t.contiguous().data.length, 6);
});

test('transposed views iterate in logical order', () => {
  const random = new Random(3);
  const values = Array.from({ length: 24 }, () => random.int(-100, 100));
  const t = HostTensor.fromValues('int32', [2, 3, 4], values);
  const transposed = t.view([4, 3, 2], [1, 4, 12]);
  const flat = transposed.toFloat64Array();
  let i = 0;
  for (let a = 0; a < 4; a++)
    for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) assert.equal(flat[i++], t.get(c, b, a));
});

test('storage type and size are checked', () => {
  assert.throws(() => new HostTensor('bf16', new Float32Array(4), [4]), DtypeError);
  assert.throws(() => new HostTensor('float32', new Float32Array(4), [5]), ShapeError);
  assert.throws(() => new HostTensor('float32', new Float32Array(4), [2, 2], [3, 1]), ShapeError);
});

test('the PRNG is deterministic per seed and roughly normal', () => {
  const a = new Random(42);
  const b = new Random(42);
  for (let i = 0; i < 100; i++) assert.equal(a.nextUint32(), b.nextUint32());
  const random = new Random(7);
  let sum = 0;
  let squares = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const x = random.normal();
    sum += x;
    squares += x * x;
  }
  assert.ok(Math.abs(sum / n) < 0.03);
  assert.ok(Math.abs(squares / n - 1) < 0.05);
  const permutation = new Random(1).permutation(50);
  assert.deepEqual(
    [...permutation].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i),
  );
});
