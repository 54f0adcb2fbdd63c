// Prints dist/kernels/layout.json: the byte layout of every parameter struct in csrc/params.h
// (sizeof, alignof, each field's offset and type, AttentionShape's fields also under "shape."),
// the constants of csrc/config.h, and each kernel's launch shape and dynamic shared memory from
// csrc/smem_sizes.h. The TypeScript launchers write their parameter blocks from the same numbers,
// and a test pins the two together. Built and run by scripts/build-kernels.mjs with the host
// compiler: g++ -std=c++17 -I csrc.
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "config.h"
#include "params.h"
#include "smem_sizes.h"

namespace {

struct Field {
  std::string name;
  size_t offset;
  size_t size;
  const char* type;
};

struct Struct {
  const char* name;
  size_t size;
  size_t align;
  std::vector<Field> fields;
};

template <typename T>
const char* type_name() {
  return "bytes";
}
template <>
const char* type_name<int32_t>() {
  return "i32";
}
template <>
const char* type_name<uint32_t>() {
  return "u32";
}
template <>
const char* type_name<int64_t>() {
  return "i64";
}
template <>
const char* type_name<uint64_t>() {
  return "u64";
}
template <>
const char* type_name<float>() {
  return "f32";
}
template <>
const char* type_name<void*>() {
  return "ptr";
}
template <>
const char* type_name<const void*>() {
  return "ptr";
}
template <>
const char* type_name<int32_t*>() {
  return "ptr";
}
template <>
const char* type_name<const int32_t*>() {
  return "ptr";
}
template <>
const char* type_name<float*>() {
  return "ptr";
}
template <>
const char* type_name<const float*>() {
  return "ptr";
}
template <>
const char* type_name<DeviceErrorReport*>() {
  return "ptr";
}
template <>
const char* type_name<AttentionShape>() {
  return "AttentionShape";
}

template <typename T>
const char* type_of(const T&) {
  return type_name<T>();
}

#define FIELD(S, f) Field{#f, offsetof(S, f), sizeof(S::f), type_of(S{}.f)}
#define ARRAY_FIELD(S, f, elem) Field{#f, offsetof(S, f), sizeof(S::f), elem}

std::vector<Field> shape_fields(const char* prefix, size_t base) {
  std::vector<Field> fields = {
      FIELD(AttentionShape, batch),
      FIELD(AttentionShape, seqlen_q),
      FIELD(AttentionShape, num_heads_q),
      FIELD(AttentionShape, num_heads_kv),
      FIELD(AttentionShape, group_size),
      FIELD(AttentionShape, rows_per_kv_head),
      FIELD(AttentionShape, num_cache_blocks),
      FIELD(AttentionShape, max_blocks_per_seq),
      FIELD(AttentionShape, causal),
      FIELD(AttentionShape, softmax_scale),
      FIELD(AttentionShape, softmax_scale_log2),
      FIELD(AttentionShape, reserved),
      FIELD(AttentionShape, q_batch_stride),
      FIELD(AttentionShape, q_row_stride),
      FIELD(AttentionShape, q_head_stride),
      FIELD(AttentionShape, k_block_stride),
      FIELD(AttentionShape, k_token_stride),
      FIELD(AttentionShape, k_head_stride),
      FIELD(AttentionShape, block_table_batch_stride),
      FIELD(AttentionShape, out_batch_stride),
      FIELD(AttentionShape, out_row_stride),
      FIELD(AttentionShape, out_head_stride),
  };
  for (Field& f : fields) {
    f.name = std::string(prefix) + f.name;
    f.offset += base;
  }
  return fields;
}

// The struct's own fields, with AttentionShape's expanded after the "shape" entry.
template <typename S>
Struct with_shape(const char* name, std::vector<Field> fields) {
  std::vector<Field> all;
  for (const Field& f : fields) {
    all.push_back(f);
    if (f.name == "shape") {
      for (const Field& g : shape_fields("shape.", f.offset)) all.push_back(g);
    }
  }
  return Struct{name, sizeof(S), alignof(S), all};
}

void print_struct(const Struct& s, bool last) {
  std::printf("    \"%s\": {\n      \"size\": %zu,\n      \"align\": %zu,\n      \"fields\": {\n", s.name, s.size, s.align);
  for (size_t i = 0; i < s.fields.size(); ++i) {
    const Field& f = s.fields[i];
    std::printf("        \"%s\": { \"offset\": %zu, \"size\": %zu, \"type\": \"%s\" }%s\n", f.name.c_str(), f.offset,
                f.size, f.type, i + 1 < s.fields.size() ? "," : "");
  }
  std::printf("      }\n    }%s\n", last ? "" : ",");
}

}  // namespace

int main() {
  using namespace flashmla;
  const std::vector<Struct> structs = {
      Struct{"TileSchedule",
             sizeof(TileSchedule),
             alignof(TileSchedule),
             {FIELD(TileSchedule, begin_batch), FIELD(TileSchedule, begin_token), FIELD(TileSchedule, end_batch),
              FIELD(TileSchedule, end_token), FIELD(TileSchedule, begin_split), FIELD(TileSchedule, seal),
              ARRAY_FIELD(TileSchedule, reserved, "i32[2]")}},
      Struct{"DeviceErrorReport",
             sizeof(DeviceErrorReport),
             alignof(DeviceErrorReport),
             {FIELD(DeviceErrorReport, flags), FIELD(DeviceErrorReport, block_id_batch),
              FIELD(DeviceErrorReport, length_batch), FIELD(DeviceErrorReport, schedule_batch)}},
      Struct{"MetadataParams",
             sizeof(MetadataParams),
             alignof(MetadataParams),
             {FIELD(MetadataParams, cache_seqlens), FIELD(MetadataParams, tile_scheduler_metadata),
              FIELD(MetadataParams, num_splits), FIELD(MetadataParams, batch), FIELD(MetadataParams, num_sm_parts),
              FIELD(MetadataParams, max_seqlen), FIELD(MetadataParams, fixed_overhead_blocks)}},
      Struct{"AttentionShape", sizeof(AttentionShape), alignof(AttentionShape), shape_fields("", 0)},
      with_shape<DecodeParams>(
          "DecodeParams",
          {ARRAY_FIELD(DecodeParams, k_tensor_map, "bytes[128]"), FIELD(DecodeParams, shape), FIELD(DecodeParams, q),
           FIELD(DecodeParams, k_cache),
           FIELD(DecodeParams, block_table), FIELD(DecodeParams, cache_seqlens),
           FIELD(DecodeParams, tile_scheduler_metadata), FIELD(DecodeParams, num_splits), FIELD(DecodeParams, out),
           FIELD(DecodeParams, lse), FIELD(DecodeParams, o_accum), FIELD(DecodeParams, lse_accum),
           FIELD(DecodeParams, errors), FIELD(DecodeParams, num_sm_parts), FIELD(DecodeParams, reserved)}),
      with_shape<CombineParams>("CombineParams",
                                {FIELD(CombineParams, shape), FIELD(CombineParams, num_splits),
                                 FIELD(CombineParams, o_accum), FIELD(CombineParams, lse_accum),
                                 FIELD(CombineParams, out), FIELD(CombineParams, lse)}),
      with_shape<ReferenceParams>(
          "ReferenceParams",
          {FIELD(ReferenceParams, shape), FIELD(ReferenceParams, q), FIELD(ReferenceParams, k_cache),
           FIELD(ReferenceParams, block_table), FIELD(ReferenceParams, cache_seqlens), FIELD(ReferenceParams, out),
           FIELD(ReferenceParams, lse)}),
      Struct{"FillParams",
             sizeof(FillParams),
             alignof(FillParams),
             {FIELD(FillParams, dst), FIELD(FillParams, count), FIELD(FillParams, seed), FIELD(FillParams, scale),
              FIELD(FillParams, clamp)}},
      Struct{"CopyParams",
             sizeof(CopyParams),
             alignof(CopyParams),
             {FIELD(CopyParams, src), FIELD(CopyParams, dst), FIELD(CopyParams, count)}},
      Struct{"TmaProbeParams",
             sizeof(TmaProbeParams),
             alignof(TmaProbeParams),
             {ARRAY_FIELD(TmaProbeParams, tensor_map, "bytes[128]"), FIELD(TmaProbeParams, x),
              FIELD(TmaProbeParams, y), FIELD(TmaProbeParams, dst)}},
  };

  std::printf("{\n  \"structs\": {\n");
  for (size_t i = 0; i < structs.size(); ++i) print_struct(structs[i], i + 1 == structs.size());
  std::printf("  },\n");

  std::printf("  \"constants\": {\n");
  std::printf("    \"kHeadDimK\": %d,\n", kHeadDimK);
  std::printf("    \"kHeadDimV\": %d,\n", kHeadDimV);
  std::printf("    \"kPageBlockSize\": %d,\n", kPageBlockSize);
  std::printf("    \"kRowTile\": %d,\n", kRowTile);
  std::printf("    \"kMetadataIntsPerPart\": %d,\n", kMetadataIntsPerPart);
  std::printf("    \"kMaxSchedulerBatch\": %d\n", kMaxSchedulerBatch);
  std::printf("  },\n");

  // Per kernel: threads per block and dynamic shared memory. "dynamicSmemBytes" is fixed;
  // "dynamicSmemBytesPer..." scales with the launch and "maxDynamicSmemBytes" caps it.
  std::printf("  \"kernels\": {\n");
  std::printf("    \"flashmla_get_metadata\": { \"threads\": %d, \"dynamicSmemBytesPerSequence\": %d, "
              "\"maxDynamicSmemBytes\": %d },\n",
              kMetadataThreads, kMetadataSmemBytesPerSequence, kMetadataMaxSmemBytes);
  for (const char* name : {"flashmla_decode_seesaw_bf16", "flashmla_decode_seesaw_fp16"}) {
    std::printf("    \"%s\": { \"threads\": %d, \"dynamicSmemBytes\": %d },\n", name, kSeesawThreads,
                kSeesawSmemBytes);
  }
  for (const char* name : {"flashmla_combine_bf16", "flashmla_combine_fp16"}) {
    std::printf("    \"%s\": { \"threads\": %d, \"rowsPerBlock\": %d, \"channelSlices\": %d, "
                "\"dynamicSmemBytes\": 0 },\n",
                name, kCombineThreads, kCombineRowsPerBlock, kCombineChannelSlices);
  }
  for (const char* name : {"flashmla_reference_bf16", "flashmla_reference_fp16"}) {
    std::printf("    \"%s\": { \"threads\": %d, \"dynamicSmemBytesPerKey\": %d, \"maxDynamicSmemBytes\": %d },\n",
                name, kReferenceThreads, kReferenceSmemBytesPerKey, kReferenceMaxSmemBytes);
  }
  for (const char* name : {"flashmla_fill_normal_bf16", "flashmla_fill_normal_fp16"}) {
    std::printf("    \"%s\": { \"threads\": %d, \"dynamicSmemBytes\": 0 },\n", name, kFillThreads);
  }
  std::printf("    \"flashmla_copy\": { \"threads\": %d, \"dynamicSmemBytes\": 0 },\n", kCopyThreads);
  std::printf("    \"flashmla_tma_probe\": { \"threads\": %d, \"dynamicSmemBytes\": 0, \"boxRows\": %d, "
              "\"boxCols\": %d, \"bytes\": %d }\n",
              kTmaProbeThreads, kTmaProbeBoxRows, kTmaProbeBoxCols, kTmaProbeBytes);
  std::printf("  }\n}\n");
  return 0;
}
