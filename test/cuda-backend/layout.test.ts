/**
 * Pins the TypeScript parameter-block layouts and constants against the C header, through the
 * layout file the kernel build emits (no GPU needed; skipped only where nvcc did not build).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as config from '../../src/config.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import { missingBinariesReason, readLayoutFile } from '../../src/cuda-backend/binaries.js';
import { kernelLimits } from '../../src/cuda-backend/launch.js';
import { defineStruct, PARAM_LAYOUTS, ParamBlock } from '../../src/cuda-backend/layout.js';

const missing = missingBinariesReason();

test('every parameter struct: size, alignment and field offsets match params.h', {
  skip: missing ?? false,
}, () => {
  const layout = readLayoutFile();
  assert.deepEqual(
    Object.keys(PARAM_LAYOUTS).sort(),
    Object.keys(layout.structs).sort(),
    'the same structs',
  );
  for (const [name, c] of Object.entries(layout.structs)) {
    const ts = PARAM_LAYOUTS[name];
    assert.equal(ts.size, c.size, `${name}: sizeof`);
    assert.equal(ts.align, c.align, `${name}: alignof`);
    for (const [field, { offset, type }] of Object.entries(c.fields)) {
      if (type === 'AttentionShape') continue; // nested: its fields are listed as shape.*
      assert.ok(field in ts.fields, `${name}.${field} is described in TypeScript`);
      assert.equal(ts.fields[field].offset, offset, `${name}.${field}: offset`);
      assert.equal(ts.fields[field].type, type, `${name}.${field}: type`);
    }
    assert.equal(
      Object.keys(ts.fields).length,
      Object.values(c.fields).filter((f) => f.type !== 'AttentionShape').length,
      `${name}: no extra fields`,
    );
  }
});

test('config.h constants equal src/config.ts', { skip: missing ?? false }, () => {
  const { constants } = readLayoutFile();
  assert.equal(constants.kHeadDimK, config.HEAD_DIM_K);
  assert.equal(constants.kHeadDimV, config.HEAD_DIM_V);
  assert.equal(constants.kPageBlockSize, config.PAGE_BLOCK_SIZE);
  assert.equal(constants.kRowTile, config.ROW_TILE);
  assert.equal(constants.kMetadataIntsPerPart, config.METADATA_INTS_PER_PART);
  assert.equal(constants.kMaxSchedulerBatch, config.MAX_SCHEDULER_BATCH);
  const { kernels } = readLayoutFile();
  assert.equal(kernels.flashmla_combine_bf16.rowsPerBlock, config.COMBINE_ROWS_PER_BLOCK);
  assert.equal(kernels.flashmla_combine_fp16.rowsPerBlock, config.COMBINE_ROWS_PER_BLOCK);
});

test('the limits the kernels imply are the ones the CPU backend enforces', {
  skip: missing ?? false,
}, () => {
  assert.deepEqual(kernelLimits(readLayoutFile().kernels), cpuBackend.limits);
});

test('kernel binaries are present after the build (CI builds them with nvcc)', {
  skip: process.env.CI ? false : 'only required in CI',
}, () => {
  assert.equal(missing, null);
});

test('parameter blocks write 64-bit fields from numbers and bigints alike, little-endian', () => {
  const layout = defineStruct([
    ['a', 'i32'],
    ['b', 'i64'],
    ['c', 'ptr'],
    ['d', 'f32'],
  ]);
  assert.deepEqual(
    [layout.size, layout.fields.b.offset, layout.fields.c.offset, layout.fields.d.offset],
    [32, 8, 16, 24],
  );
  for (const value of [
    0,
    1,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 40 + 12345,
    2 ** 53 - 1,
    -1,
    -(2 ** 35) - 7,
  ]) {
    const fromNumber = new ParamBlock(layout).set('b', value).bytes;
    const fromBigint = new ParamBlock(layout).set('b', BigInt(value)).bytes;
    assert.deepEqual(fromNumber, fromBigint, `i64 ${value}`);
    assert.equal(new DataView(fromNumber.buffer).getBigInt64(8, true), BigInt(value));
  }
  const pointer = 0x7f12_3456_7890n;
  assert.equal(
    new DataView(new ParamBlock(layout).set('c', pointer).bytes.buffer).getBigUint64(16, true),
    pointer,
  );
  assert.throws(() => new ParamBlock(layout).set('c', -1), RangeError);
  assert.throws(() => new ParamBlock(layout).set('a', 2 ** 31), RangeError);
  assert.throws(() => new ParamBlock(layout).set('b', 2 ** 53), RangeError);
});
