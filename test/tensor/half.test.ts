import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bf16BitsToFloat32,
  decodeHalfArray,
  encodeHalfArray,
  float32ToBf16Bits,
  float32ToFp16Bits,
  fp16BitsToFloat32,
} from '../../src/tensor/half.js';

test('bf16: every bit pattern survives decode then encode (NaNs stay NaN)', () => {
  for (let bits = 0; bits < 65536; bits++) {
    const value = bf16BitsToFloat32(bits);
    const back = float32ToBf16Bits(value);
    if (Number.isNaN(value))
      assert.ok(Number.isNaN(bf16BitsToFloat32(back)), `NaN pattern ${bits}`);
    else assert.equal(back, bits, `pattern ${bits.toString(16)}`);
  }
});

test('fp16: every bit pattern survives decode then encode (NaNs stay NaN)', () => {
  for (let bits = 0; bits < 65536; bits++) {
    const value = fp16BitsToFloat32(bits);
    const back = float32ToFp16Bits(value);
    if (Number.isNaN(value))
      assert.ok(Number.isNaN(fp16BitsToFloat32(back)), `NaN pattern ${bits}`);
    else assert.equal(back, bits, `pattern ${bits.toString(16)}`);
  }
});

test('bf16: round to nearest, ties to even', () => {
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
  assert.equal(float32ToBf16Bits(1 + 2 ** -8), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  assert.equal(float32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
  // Just above halfway rounds up.
  assert.equal(float32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81);
  assert.equal(float32ToBf16Bits(-2.5), 0xc020);
  // The largest float32 rounds to Inf in bf16.
  assert.equal(float32ToBf16Bits(3.4028234663852886e38), 0x7f80);
});

test('bf16: Inf, -0, NaN and float32 subnormals', () => {
  assert.equal(float32ToBf16Bits(Number.POSITIVE_INFINITY), 0x7f80);
  assert.equal(float32ToBf16Bits(Number.NEGATIVE_INFINITY), 0xff80);
  assert.equal(float32ToBf16Bits(-0), 0x8000);
  assert.ok(Number.isNaN(bf16BitsToFloat32(float32ToBf16Bits(Number.NaN))));
  // The smallest bf16 subnormal is 2^-133; half of it (a tie) rounds to even: 0.
  assert.equal(float32ToBf16Bits(2 ** -133), 0x0001);
  assert.equal(float32ToBf16Bits(2 ** -134), 0x0000);
  assert.equal(float32ToBf16Bits(3 * 2 ** -134), 0x0002);
});

test('fp16: normals, ties to even, overflow and subnormals', () => {
  assert.equal(float32ToFp16Bits(1), 0x3c00);
  assert.equal(float32ToFp16Bits(-2), 0xc000);
  assert.equal(float32ToFp16Bits(65504), 0x7bff);
  // 65520 is the midpoint between 65504 and 65536 (out of range): ties to even = Inf.
  assert.equal(float32ToFp16Bits(65520), 0x7c00);
  assert.equal(float32ToFp16Bits(65519), 0x7bff);
  assert.equal(float32ToFp16Bits(1 + 2 ** -11), 0x3c00); // tie to even (down)
  assert.equal(float32ToFp16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie to even (up)
  assert.equal(float32ToFp16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(float32ToFp16Bits(2 ** -25), 0x0000); // tie between 0 and 2^-24: even is 0
  assert.equal(float32ToFp16Bits(1.5 * 2 ** -24), 0x0002); // tie between 1 and 2 ulps: even is 2
  assert.equal(float32ToFp16Bits(2 ** -14), 0x0400); // smallest normal
  assert.equal(float32ToFp16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the normals
  assert.equal(float32ToFp16Bits(Number.NEGATIVE_INFINITY), 0xfc00);
  assert.equal(float32ToFp16Bits(-0), 0x8000);
  assert.ok(Number.isNaN(fp16BitsToFloat32(float32ToFp16Bits(Number.NaN))));
  assert.equal(fp16BitsToFloat32(0x0001), 2 ** -24);
  assert.equal(fp16BitsToFloat32(0x7bff), 65504);
});

test('array helpers agree with the scalar conversions', () => {
  const values = [0, 1, -1.5, 2.71875, 1e-6, -65504, 1e10, Number.NaN, Number.POSITIVE_INFINITY];
  for (const kind of ['bf16', 'fp16'] as const) {
    const bits = encodeHalfArray(kind, values);
    const decoded = decodeHalfArray(kind, bits);
    const scalarEncode = kind === 'bf16' ? float32ToBf16Bits : float32ToFp16Bits;
    const scalarDecode = kind === 'bf16' ? bf16BitsToFloat32 : fp16BitsToFloat32;
    values.forEach((value, i) => {
      assert.equal(bits[i], scalarEncode(value));
      assert.ok(
        Object.is(decoded[i], scalarDecode(bits[i])) ||
          (Number.isNaN(decoded[i]) && Number.isNaN(scalarDecode(bits[i]))),
      );
    });
  }
});
