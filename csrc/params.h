// Parameter blocks of every kernel. Each kernel takes one of these by value as a
// __grid_constant__ argument; the TypeScript launchers write the same bytes (src/cuda-backend/layout.ts)
// and a test pins their offsets against the ones this header produces (scripts/emit-layout.cpp).
// Plain C layout: fixed-width fields only, pointers as 64-bit, no padding surprises.
#pragma once
#include <stdint.h>

// One part of the tile schedule: a contiguous run of KV blocks across consecutive sequences.
// tile_scheduler_metadata is [num_sm_parts][8] int32 with these fields.
struct TileSchedule {
  int32_t begin_batch;   // first sequence of the part
  int32_t begin_token;   // first token of begin_batch (a multiple of 64)
  int32_t end_batch;     // last sequence of the part (< begin_batch when the part is empty)
  int32_t end_token;     // one past the last token of end_batch
  int32_t begin_split;   // which split of begin_batch this part's first piece is
  // A hash of this part's fields, the cache_seqlens values of its sequences and their entries
  // of num_splits (csrc/schedule_seal.h). The decode kernels recompute it from what they read:
  // a schedule made for other lengths, or edited, does not match and is reported, not answered.
  uint32_t seal;
  int32_t reserved[2];
};

// What the decode kernels found wrong in the values they were given: bits of `flags`, and for
// each kind the smallest sequence index it was seen in (INT32_MAX when none). The host reads it
// back at the next synchronisation, raises a typed error naming the sequence, and resets it.
enum DeviceErrorFlag : int32_t {
  kErrorBlockIdOutOfRange = 1,  // a used block-table entry outside [0, num_cache_blocks)
  kErrorLengthOutOfRange = 2,   // a cache_seqlens value < 0 or > max_blocks_per_seq * 64
  kErrorStaleSchedule = 4,      // the schedule was made for other lengths, or edited
};
struct DeviceErrorReport {
  int32_t flags;
  int32_t block_id_batch;  // smallest sequence with kErrorBlockIdOutOfRange
  int32_t length_batch;    // smallest sequence with kErrorLengthOutOfRange
  int32_t schedule_batch;  // first sequence of the smallest part with kErrorStaleSchedule
};

// getMlaMetadata on the GPU: one CTA turns cache_seqlens into the tile schedule.
struct MetadataParams {
  const int32_t* cache_seqlens;      // [batch]
  int32_t* tile_scheduler_metadata;  // [num_sm_parts][8]
  int32_t* num_splits;               // [batch + 1], prefix sums of splits per sequence
  int32_t batch;
  int32_t num_sm_parts;
  int32_t max_seqlen;                // blockTable capacity (columns * 64): longer lengths are clamped
  int32_t fixed_overhead_blocks;     // the cost of starting a piece, in KV blocks (negative counts as 0)
};

// Shapes and strides of one decode call, shared by the decode, combine and reference kernels.
// Strides are in elements; the last dimension of every tensor is contiguous.
struct AttentionShape {
  int32_t batch;            // b
  int32_t seqlen_q;         // s_q
  int32_t num_heads_q;      // h_q
  int32_t num_heads_kv;     // h_kv
  int32_t group_size;       // h_q / h_kv
  int32_t rows_per_kv_head; // s_q * group_size: query rows that share one KV head
  int32_t num_cache_blocks; // kCache.shape[0]
  int32_t max_blocks_per_seq; // blockTable.shape[1]
  int32_t causal;           // 0 or 1
  float softmax_scale;
  float softmax_scale_log2; // softmax_scale * log2(e)
  int32_t reserved;
  int64_t q_batch_stride, q_row_stride, q_head_stride;       // q: [b, s_q, h_q, 576]
  int64_t k_block_stride, k_token_stride, k_head_stride;     // kCache: [blocks, 64, h_kv, 576]
  int64_t block_table_batch_stride;                          // blockTable: [b, max_blocks]
  int64_t out_batch_stride, out_row_stride, out_head_stride; // out: [b, s_q, h_q, 512]
};

// The split-KV decode kernels (every variant takes this block). Grid: (ceil(rows_per_kv_head /
// 64), h_kv, num_sm_parts).
struct DecodeParams {
  // TMA descriptor of kCache as the 4-D tensor (576 channels, h_kv, 64 tokens, num_cache_blocks),
  // box (64, 1, 64, 1), 128-byte swizzle; only the variants that load K by TMA read it.
  alignas(64) uint64_t k_tensor_map[16];
  AttentionShape shape;
  const void* q;
  const void* k_cache;
  const int32_t* block_table;
  const int32_t* cache_seqlens;
  const int32_t* tile_scheduler_metadata; // [num_sm_parts][8]
  const int32_t* num_splits;              // [b + 1]
  void* out;                              // [b, s_q, h_q, 512], q's dtype
  float* lse;                             // [b, h_q, s_q], contiguous
  float* o_accum;   // [num_split_rows][h_kv][rows_per_kv_head][512] float32 partial outputs
  float* lse_accum; // [num_split_rows][h_kv][rows_per_kv_head] float32 partial lse
  DeviceErrorReport* errors;  // where to report bad values; may be null (nothing reported)
  int32_t num_sm_parts;
  int32_t reserved;
};

// The combine kernel: merges the partials of sequences that were cut into several splits.
struct CombineParams {
  AttentionShape shape;
  const int32_t* num_splits; // [b + 1]
  const float* o_accum;
  const float* lse_accum;
  void* out;
  float* lse;
};

// The plain GPU reference (test oracle): float32 math, float32 outputs.
struct ReferenceParams {
  AttentionShape shape;
  const void* q;
  const void* k_cache;
  const int32_t* block_table;
  const int32_t* cache_seqlens;
  float* out;  // [b, s_q, h_q, 512] contiguous
  float* lse;  // [b, h_q, s_q] contiguous
};

// ---- Test and benchmark utilities (csrc/testing.cu) -----------------------------------------

// flashmla_fill_normal_bf16/fp16: dst[k] = round(clamp(N(0,1) * scale, ±clamp)) for k < count,
// N(0,1) from a counter-based hash of (seed, k), so the result depends on nothing but the
// arguments. clamp <= 0 means no clamp.
struct FillParams {
  void* dst;
  int64_t count;  // elements
  uint64_t seed;
  float scale;
  float clamp;
};

// flashmla_copy: dst[k] = src[k] for k < count, 16 bytes at a time (the bandwidth ceiling).
struct CopyParams {
  const void* src;  // 16-byte aligned
  void* dst;        // 16-byte aligned
  int64_t count;    // 16-byte units
};

// flashmla_tma_probe: one 64x64 box of a 2-D bf16 tensor at element coordinates (x inner, y
// outer), fetched by TMA into shared memory and copied verbatim (8 KiB, the box's shared-memory
// image including any swizzle) to dst. tensor_map holds a CUtensorMap (128 bytes, 64-byte aligned)
// whose box is 64x64 bf16.
struct TmaProbeParams {
  alignas(64) uint64_t tensor_map[16];
  int32_t x;
  int32_t y;
  void* dst;
};
