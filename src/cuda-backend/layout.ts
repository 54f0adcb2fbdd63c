/**
 * The kernels' parameter blocks (csrc/params.h) described in TypeScript: each struct as its
 * ordered fields, with offsets computed by C's layout rules. A test pins every size and offset
 * against dist/kernels/layout.json, which the build emits from the C header itself, so the two
 * cannot drift apart silently.
 */

export type FieldType = 'i32' | 'u32' | 'f32' | 'i64' | 'u64' | 'ptr' | 'i32[2]' | 'bytes[128]';

const TYPE_SIZE: Record<FieldType, number> = {
  i32: 4,
  u32: 4,
  f32: 4,
  i64: 8,
  u64: 8,
  ptr: 8,
  'i32[2]': 8,
  'bytes[128]': 128,
};
const TYPE_ALIGN: Record<FieldType, number> = {
  i32: 4,
  u32: 4,
  f32: 4,
  i64: 8,
  u64: 8,
  ptr: 8,
  'i32[2]': 4,
  'bytes[128]': 64,
};

export interface StructLayout<Name extends string = string> {
  size: number;
  align: number;
  fields: Record<Name, { offset: number; type: FieldType }>;
}

type FieldList = readonly (readonly [string, FieldType | StructLayout])[];
type FieldNames<F extends FieldList> = F[number] extends readonly [infer N, infer T]
  ? N extends string
    ? T extends StructLayout<infer Inner>
      ? N | `${N}.${Inner}`
      : N
    : never
  : never;

/** Lays out fields in order, each at the next multiple of its alignment; nested structs are flattened as `outer.inner`. */
export function defineStruct<const F extends FieldList>(fields: F): StructLayout<FieldNames<F>> {
  let offset = 0;
  let align = 1;
  const out: Record<string, { offset: number; type: FieldType }> = {};
  for (const [name, type] of fields) {
    const fieldAlign = typeof type === 'string' ? TYPE_ALIGN[type] : type.align;
    const fieldSize = typeof type === 'string' ? TYPE_SIZE[type] : type.size;
    offset = Math.ceil(offset / fieldAlign) * fieldAlign;
    if (typeof type === 'string') out[name] = { offset, type };
    else
      for (const [inner, field] of Object.entries(type.fields))
        out[`${name}.${inner}`] = { offset: offset + field.offset, type: field.type };
    offset += fieldSize;
    align = Math.max(align, fieldAlign);
  }
  return {
    size: Math.ceil(offset / align) * align,
    align,
    // Copied once more: the object built key by key above ends up a hash table in V8, and every
    // field write of a launch looks a field up here.
    fields: Object.fromEntries(Object.entries(out)) as StructLayout<FieldNames<F>>['fields'],
  };
}

export const AttentionShapeLayout = defineStruct([
  ['batch', 'i32'],
  ['seqlen_q', 'i32'],
  ['num_heads_q', 'i32'],
  ['num_heads_kv', 'i32'],
  ['group_size', 'i32'],
  ['rows_per_kv_head', 'i32'],
  ['num_cache_blocks', 'i32'],
  ['max_blocks_per_seq', 'i32'],
  ['causal', 'i32'],
  ['softmax_scale', 'f32'],
  ['softmax_scale_log2', 'f32'],
  ['reserved', 'i32'],
  ['q_batch_stride', 'i64'],
  ['q_row_stride', 'i64'],
  ['q_head_stride', 'i64'],
  ['k_block_stride', 'i64'],
  ['k_token_stride', 'i64'],
  ['k_head_stride', 'i64'],
  ['block_table_batch_stride', 'i64'],
  ['out_batch_stride', 'i64'],
  ['out_row_stride', 'i64'],
  ['out_head_stride', 'i64'],
]);

export const TileScheduleLayout = defineStruct([
  ['begin_batch', 'i32'],
  ['begin_token', 'i32'],
  ['end_batch', 'i32'],
  ['end_token', 'i32'],
  ['begin_split', 'i32'],
  ['seal', 'u32'],
  ['reserved', 'i32[2]'],
]);

export const DeviceErrorReportLayout = defineStruct([
  ['flags', 'i32'],
  ['block_id_batch', 'i32'],
  ['length_batch', 'i32'],
  ['schedule_batch', 'i32'],
]);

export const MetadataParamsLayout = defineStruct([
  ['cache_seqlens', 'ptr'],
  ['tile_scheduler_metadata', 'ptr'],
  ['num_splits', 'ptr'],
  ['batch', 'i32'],
  ['num_sm_parts', 'i32'],
  ['max_seqlen', 'i32'],
  ['fixed_overhead_blocks', 'i32'],
]);

export const DecodeParamsLayout = defineStruct([
  ['k_tensor_map', 'bytes[128]'],
  ['shape', AttentionShapeLayout],
  ['q', 'ptr'],
  ['k_cache', 'ptr'],
  ['block_table', 'ptr'],
  ['cache_seqlens', 'ptr'],
  ['tile_scheduler_metadata', 'ptr'],
  ['num_splits', 'ptr'],
  ['out', 'ptr'],
  ['lse', 'ptr'],
  ['o_accum', 'ptr'],
  ['lse_accum', 'ptr'],
  ['errors', 'ptr'],
  ['num_sm_parts', 'i32'],
  ['reserved', 'i32'],
]);

export const CombineParamsLayout = defineStruct([
  ['shape', AttentionShapeLayout],
  ['num_splits', 'ptr'],
  ['o_accum', 'ptr'],
  ['lse_accum', 'ptr'],
  ['out', 'ptr'],
  ['lse', 'ptr'],
]);

export const ReferenceParamsLayout = defineStruct([
  ['shape', AttentionShapeLayout],
  ['q', 'ptr'],
  ['k_cache', 'ptr'],
  ['block_table', 'ptr'],
  ['cache_seqlens', 'ptr'],
  ['out', 'ptr'],
  ['lse', 'ptr'],
]);

export const FillParamsLayout = defineStruct([
  ['dst', 'ptr'],
  ['count', 'i64'],
  ['seed', 'u64'],
  ['scale', 'f32'],
  ['clamp', 'f32'],
]);

export const CopyParamsLayout = defineStruct([
  ['src', 'ptr'],
  ['dst', 'ptr'],
  ['count', 'i64'],
]);

export const TmaProbeParamsLayout = defineStruct([
  ['tensor_map', 'bytes[128]'],
  ['x', 'i32'],
  ['y', 'i32'],
  ['dst', 'ptr'],
]);

/** Every struct of params.h, by its C name (what layout.json lists). */
export const PARAM_LAYOUTS: Record<string, StructLayout> = {
  TileSchedule: TileScheduleLayout,
  DeviceErrorReport: DeviceErrorReportLayout,
  MetadataParams: MetadataParamsLayout,
  AttentionShape: AttentionShapeLayout,
  DecodeParams: DecodeParamsLayout,
  CombineParams: CombineParamsLayout,
  ReferenceParams: ReferenceParamsLayout,
  FillParams: FillParamsLayout,
  CopyParams: CopyParamsLayout,
  TmaProbeParams: TmaProbeParamsLayout,
};

/** The bytes of one parameter block, written field by field. */
export class ParamBlock<Name extends string> {
  readonly bytes: Uint8Array;
  readonly layout: StructLayout<Name>;
  private readonly view: DataView;

  constructor(layout: StructLayout<Name>) {
    this.layout = layout;
    this.bytes = new Uint8Array(layout.size);
    this.view = new DataView(this.bytes.buffer);
  }

  set(name: Name, value: number | bigint | Uint8Array): this {
    const { offset, type } = this.layout.fields[name];
    switch (type) {
      case 'i32':
        this.view.setInt32(offset, checkInt32(name, value), true);
        break;
      case 'u32':
        this.view.setUint32(offset, Number(value) >>> 0, true);
        break;
      case 'f32':
        this.view.setFloat32(offset, Number(value), true);
        break;
      case 'i64':
      case 'u64':
      case 'ptr':
        this.set64(offset, type, value as number | bigint);
        break;
      case 'bytes[128]':
        this.bytes.set(value as Uint8Array, offset);
        break;
      case 'i32[2]':
        throw new Error(`${name}: reserved arrays are left zero`);
    }
    return this;
  }

  /**
   * 64-bit fields. Safe-integer numbers (strides, counts) are written as two 32-bit halves:
   * no BigInt on the launch path, which is hot (one block per kernel per call).
   */
  private set64(offset: number, type: FieldType, value: number | bigint): void {
    if (typeof value === 'bigint') {
      if (type === 'i64') this.view.setBigInt64(offset, value, true);
      else this.view.setBigUint64(offset, value, true);
      return;
    }
    if (!Number.isSafeInteger(value) || (type !== 'i64' && value < 0)) {
      throw new RangeError(`${value} is not a safe integer for a ${type} field`);
    }
    const high = Math.floor(value / 2 ** 32);
    this.view.setUint32(offset, value - high * 2 ** 32, true);
    this.view.setInt32(offset + 4, high, true);
  }

  /** Sets many fields at once. */
  setAll(values: Partial<Record<Name, number | bigint | Uint8Array>>): this {
    for (const [name, value] of Object.entries(values) as [Name, number | bigint | Uint8Array][])
      this.set(name, value);
    return this;
  }
}

function checkInt32(name: string, value: number | bigint | Uint8Array): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31)
    throw new RangeError(`${name}: ${n} does not fit int32`);
  return n;
}
