/**
 * Conversions between float32 and the two 16-bit float formats, bit-exact with the hardware:
 * round to nearest even, NaN stays NaN (quiet), Inf stays Inf, subnormals kept (fp16 has them;
 * bf16 shares float32's exponent range so its subnormals come from float32's).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bf16 bits, round to nearest even. */
export function float32ToBf16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) {
    return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN, sign kept
  }
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

/** bf16 bits -> float32 value (exact). */
export function bf16BitsToFloat32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** float32 -> fp16 bits, round to nearest even, with subnormals, overflow to Inf. */
export function float32ToFp16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;

  if (exponent === 0xff) {
    // Inf stays Inf; NaN becomes a quiet NaN carrying the top mantissa bits.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const unbiased = exponent - 127;
  if (unbiased > 15) return sign | 0x7c00;
  if (unbiased >= -14) {
    // Normal fp16: keep 10 mantissa bits, round the 13 dropped bits to nearest even.
    let half = ((unbiased + 15) << 10) | (mantissa >>> 13);
    const dropped = mantissa & 0x1fff;
    if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half += 1; // may carry into Inf: correct
    return sign | half;
  }
  if (unbiased < -25) return sign; // below half the smallest subnormal: rounds to zero
  // Subnormal fp16: value = m * 2^-24 with m < 1024. Shift the full significand into place.
  mantissa |= 0x800000;
  const shift = -unbiased - 14 + 13; // 14..24 for unbiased in [-25, -15]
  let half = mantissa >>> shift;
  const dropped = mantissa & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (dropped > halfway || (dropped === halfway && (half & 1) === 1)) half += 1;
  return sign | half;
}

const FP16_TABLE = buildFp16Table();

function buildFp16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >>> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    let value: number;
    if (exponent === 0) value = mantissa * 2 ** -24;
    else if (exponent === 31) value = mantissa === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
    else value = (1 + mantissa / 1024) * 2 ** (exponent - 15);
    table[bits] = sign * value;
  }
  return table;
}

/** fp16 bits -> float32 value (exact). */
export function fp16BitsToFloat32(bits: number): number {
  return FP16_TABLE[bits & 0xffff];
}

let bf16Table: Float32Array | undefined;

/**
 * A 65536-entry table from 16-bit pattern to value, for decoding many elements fast
 * (`table[bits]`).
 */
export function halfDecodeTable(kind: 'bf16' | 'fp16'): Float32Array {
  if (kind === 'fp16') return FP16_TABLE;
  if (!bf16Table) {
    bf16Table = new Float32Array(65536);
    const wide = new Uint32Array(bf16Table.buffer);
    for (let bits = 0; bits < 65536; bits++) wide[bits] = bits << 16;
  }
  return bf16Table;
}

/** Rounds a number to the nearest bf16 value, returned as a number. */
export function roundToBf16(value: number): number {
  return bf16BitsToFloat32(float32ToBf16Bits(value));
}

/** Rounds a number to the nearest fp16 value, returned as a number. */
export function roundToFp16(value: number): number {
  return fp16BitsToFloat32(float32ToFp16Bits(value));
}

/** Decodes a whole array of 16-bit floats into float32. */
export function decodeHalfArray(
  kind: 'bf16' | 'fp16',
  bits: Uint16Array,
  out = new Float32Array(bits.length),
): Float32Array {
  if (kind === 'bf16') {
    const wide = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = FP16_TABLE[bits[i]];
  }
  return out;
}

/** Encodes numbers into 16-bit floats (round to nearest even). */
export function encodeHalfArray(
  kind: 'bf16' | 'fp16',
  values: ArrayLike<number>,
  out = new Uint16Array(values.length),
): Uint16Array {
  const encode = kind === 'bf16' ? float32ToBf16Bits : float32ToFp16Bits;
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]);
  return out;
}
