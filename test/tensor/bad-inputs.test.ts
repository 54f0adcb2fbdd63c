/**
 * Tensor factories given what a JavaScript caller can pass: every mistake is a library error
 * with a code that names the argument and the value, never a plain TypeError or RangeError, and
 * nothing wraps or truncates silently.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import {
  DeviceMismatchError,
  DtypeError,
  type FlashMlaError,
  LimitError,
  ShapeError,
  StrideError,
  ValueError,
} from '../../src/errors.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';

type ErrorClass = abstract new (...args: never[]) => FlashMlaError;

function assertLibraryError(
  run: () => unknown,
  kind: ErrorClass,
  code: string,
  message: RegExp,
): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof kind, `${String(error)} is not a ${kind.name}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

test('int32 values outside int32, fractional or not numbers are refused, not wrapped', () => {
  assertLibraryError(
    () => HostTensor.fromValues('int32', [3], [1, 3e9, 2]),
    ValueError,
    'ERR_VALUE',
    /^values\[1\]: expected an int32 value .*, got 3000000000$/,
  );
  assertLibraryError(
    () => HostTensor.fromValues('int32', [1], [-(2 ** 31) - 1]),
    ValueError,
    'ERR_VALUE',
    /got -2147483649/,
  );
  assertLibraryError(
    () => HostTensor.fromValues('int32', [2], [7, 1.5]),
    ValueError,
    'ERR_VALUE',
    /values\[1\].*got 1\.5/,
  );
  assertLibraryError(
    () => HostTensor.fromValues('int32', [1], [Number.NaN]),
    ValueError,
    'ERR_VALUE',
    /got NaN/,
  );
  assertLibraryError(
    () => HostTensor.fromValues('bf16', [1], ['1' as unknown as number]),
    ValueError,
    'ERR_VALUE',
    /values\[0\]: expected a number, got "1"/,
  );
  assertLibraryError(
    () => HostTensor.full('int32', [2], 2 ** 31),
    ValueError,
    'ERR_VALUE',
    /value/,
  );
  const lengths = HostTensor.fromValues('int32', [2], [2 ** 31 - 1, -(2 ** 31)]);
  assert.deepEqual([...lengths.data], [2 ** 31 - 1, -(2 ** 31)], 'the extremes still fit');
  assertLibraryError(() => lengths.set(3e9, 0), ValueError, 'ERR_VALUE', /3000000000/);
  assert.equal(lengths.get(0), 2 ** 31 - 1, 'a refused set leaves the element alone');
});

test('unknown dtypes and bad shapes get DtypeError and ShapeError, on empty() too', () => {
  for (const make of [
    (dtype: unknown, shape: unknown) => cpuBackend.empty(dtype as 'bf16', shape as number[]),
    (dtype: unknown, shape: unknown) => HostTensor.zeros(dtype as 'bf16', shape as number[]),
  ]) {
    assertLibraryError(() => make('bf17', [2]), DtypeError, 'ERR_DTYPE', /dtype: .*got "bf17"/);
    assertLibraryError(() => make(undefined, [2]), DtypeError, 'ERR_DTYPE', /got undefined/);
    assertLibraryError(() => make('bf16', [2, -1]), ShapeError, 'ERR_SHAPE', /\[2, -1\]/);
    assertLibraryError(() => make('bf16', [2.5]), ShapeError, 'ERR_SHAPE', /\[2\.5\]/);
    assertLibraryError(() => make('bf16', [Number.NaN]), ShapeError, 'ERR_SHAPE', /NaN/);
    assertLibraryError(() => make('bf16', 4), ShapeError, 'ERR_SHAPE', /got 4/);
    assertLibraryError(() => make('bf16', [2 ** 30, 2 ** 30]), ShapeError, 'ERR_SHAPE', /at most/);
    assertLibraryError(() => make('fp16', [2 ** 33]), LimitError, 'ERR_LIMIT', /8589934592/);
  }
  assertLibraryError(
    () => new HostTensor('bf17' as 'int32', new Int32Array(1), [1]),
    DtypeError,
    'ERR_DTYPE',
    /bf17/,
  );
  assertLibraryError(
    () => new HostTensor('int32', null as unknown as Int32Array, [1]),
    DtypeError,
    'ERR_DTYPE',
    /data: expected a Int32Array for dtype int32, got null/,
  );
  assertLibraryError(
    () => new HostTensor('int32', new Int32Array(4), [2], [1], -1),
    ShapeError,
    'ERR_SHAPE',
    /offset/,
  );
  assertLibraryError(
    () => new HostTensor('int32', new Int32Array(4), [2], 'x' as unknown as number[]),
    StrideError,
    'ERR_STRIDE',
    /strides/,
  );
  assertLibraryError(
    () => HostTensor.padded('bf16', [2, 3], [2, -3]),
    ShapeError,
    'ERR_SHAPE',
    /paddedShape/,
  );
  assertLibraryError(
    () => HostTensor.fromValues('bf16', [2], null as unknown as number[]),
    ShapeError,
    'ERR_SHAPE',
    /values/,
  );
});

test('element access checks the index: a wrong count or an index out of range is an error', () => {
  const t = HostTensor.fromValues('float32', [2, 3], [0, 1, 2, 3, 4, 5]);
  assert.equal(t.get(1, 2), 5);
  assertLibraryError(() => t.get(2, 0), ShapeError, 'ERR_SHAPE', /index: .*\[2, 3\], got \[2, 0\]/);
  assertLibraryError(() => t.get(1), ShapeError, 'ERR_SHAPE', /got \[1\]/);
  assertLibraryError(() => t.get(0, -1), ShapeError, 'ERR_SHAPE', /got \[0, -1\]/);
  assertLibraryError(() => t.set(1, 0, 1.5), ShapeError, 'ERR_SHAPE', /got \[0, 1\.5\]/);
  assertLibraryError(() => t.set(1, 0, 3), ShapeError, 'ERR_SHAPE', /got \[0, 3\]/);
});

test('upload() takes host tensors only', () => {
  assertLibraryError(
    () => cpuBackend.upload({ dtype: 'bf16' } as unknown as HostTensor),
    ShapeError,
    'ERR_SHAPE',
    /tensor: expected a HostTensor/,
  );
  const onGpu = { dtype: 'bf16', shape: [1], strides: [1], device: { kind: 'cuda', ordinal: 0 } };
  assertLibraryError(
    () => cpuBackend.upload(onGpu as unknown as HostTensor),
    DeviceMismatchError,
    'ERR_DEVICE_MISMATCH',
    /got a tensor on cuda:0/,
  );
});

test('host tensors can be disposed and used with `using`, like device tensors', () => {
  let seen: HostTensor;
  {
    using t = HostTensor.zeros('bf16', [2]);
    seen = t;
    t.dispose();
  }
  assert.equal(seen.get(0), 0, 'host memory stays readable: there is nothing to free');
});
