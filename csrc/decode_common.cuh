// What every decode kernel must agree on, whatever its tensor-core path: the walk over a part's
// pieces as the tile scheduler wrote it, the clamping that keeps every read inside the block
// table and the cache, the causal key limit of a query row, whether a piece writes the final
// output or a split's partial, where a split's partial lives in the workspace (which the combine
// kernel reads too), and how bad values are reported. src/cpu-backend/split-decode.ts is the executable
// spec of the same walk.
//
// A part covers sequences begin_batch .. end_batch; its piece of sequence i covers tokens
// [i == begin_batch ? begin_token : 0, i == end_batch ? end_token : len_i). Lengths are clamped to
// [0, max_blocks_per_seq * 64] and token ranges to [0, len], so no walk reads past a block-table
// row, whatever the values; block ids are range-checked by each kernel before use.
#pragma once
#include <stdint.h>

#include "config.h"
#include "params.h"
#include "schedule_seal.h"

namespace flashmla::decode {

// The part's range, read by field from tile_scheduler_metadata, with its sequences clamped to the
// batch. `fields_seal` is the first half of the part's seal, over the raw fields.
struct PartRange {
  int begin_batch;
  int end_batch;  // < begin_batch when the part has nothing to do
  int begin_token;
  int end_token;
  int begin_split;
  uint32_t seal;  // the seal the scheduler wrote
  uint32_t fields_seal;
};

__device__ __forceinline__ PartRange read_part(const DecodeParams& p, int part) {
  const TileSchedule s = reinterpret_cast<const TileSchedule*>(p.tile_scheduler_metadata)[part];
  PartRange r;
  r.begin_batch = max(s.begin_batch, 0);
  r.end_batch = min(s.end_batch, p.shape.batch - 1);
  r.begin_token = s.begin_token;
  r.end_token = s.end_token;
  r.begin_split = s.begin_split;
  r.seal = s.seal;
  r.fields_seal = seal_of_fields(part, s.begin_batch, s.begin_token, s.end_batch, s.end_token, s.begin_split);
  return r;
}

// Tokens a sequence can have: the block table's capacity.
__device__ __forceinline__ int64_t capacity_of(const AttentionShape& sh) {
  return max(static_cast<int64_t>(sh.max_blocks_per_seq) * kPageBlockSize, int64_t{0});
}

// One piece: the part of one sequence that a CTA covers.
struct Piece {
  int batch;
  int len;         // the sequence's length, clamped to [0, capacity]
  int tok_begin;   // first token (a multiple of 64 in a well-formed schedule)
  int tok_end;     // one past the last token, <= len
  int first_page;  // block-table column of the first block
  int num_blocks;  // KV blocks the piece touches (0 when it is empty)
};

__device__ __forceinline__ Piece piece_of(const AttentionShape& sh, const PartRange& r, int batch, int32_t raw_len) {
  Piece pc;
  pc.batch = batch;
  pc.len = static_cast<int>(min(max(static_cast<int64_t>(raw_len), int64_t{0}), capacity_of(sh)));
  pc.tok_end = min(batch == r.end_batch ? r.end_token : pc.len, pc.len);
  pc.tok_begin = min(max(batch == r.begin_batch ? r.begin_token : 0, 0), max(pc.tok_end, 0));
  pc.first_page = pc.tok_begin / kPageBlockSize;
  const int end_page = pc.tok_end / kPageBlockSize + (pc.tok_end % kPageBlockSize != 0 ? 1 : 0);
  pc.num_blocks = pc.tok_end > pc.tok_begin ? end_page - pc.first_page : 0;
  return pc;
}

// Where a piece's result goes: the final out/lse when its sequence is cut into one split,
// otherwise split row num_splits[batch] + (the part's begin_split for its first sequence, else 0)
// of o_accum/lse_accum.
struct PieceOutput {
  bool is_final;
  int split_row;
};

__device__ __forceinline__ PieceOutput output_of(const DecodeParams& p, const PartRange& r, int batch,
                                                 int32_t splits_begin, int32_t splits_end) {
  PieceOutput o;
  o.is_final = splits_end - splits_begin <= 1;
  o.split_row = splits_begin + (batch == r.begin_batch ? r.begin_split : 0);
  return o;
}

// Query row m of a KV head's rows_per_kv_head (m = s * group_size + g): its query token and head.
struct QueryRow {
  int s;
  int q_head;
};

__device__ __forceinline__ QueryRow query_row(const AttentionShape& sh, int kv_head, int m) {
  QueryRow row;
  row.s = m / sh.group_size;
  row.q_head = kv_head * sh.group_size + (m - row.s * sh.group_size);
  return row;
}

// One past the last key query row m attends within the piece (>= tok_begin; == tok_begin when it
// attends none): causal rows stop at len - s_q + s (bottom-right aligned).
__device__ __forceinline__ int key_end_of_row(const AttentionShape& sh, const Piece& pc, int m) {
  const int s = m / sh.group_size;
  const int64_t causal_end = static_cast<int64_t>(pc.len) - sh.seqlen_q + s + 1;
  const int64_t end = sh.causal ? min(static_cast<int64_t>(pc.tok_end), causal_end) : pc.tok_end;
  return static_cast<int>(max(end, static_cast<int64_t>(pc.tok_begin)));
}

// Row of o_accum ([split][h_kv][rows_per_kv_head][512]) and lse_accum holding split_row's
// partial of query row m of KV head kv_head.
__device__ __forceinline__ int64_t accum_row(const AttentionShape& sh, int split_row, int kv_head, int m) {
  return (static_cast<int64_t>(split_row) * sh.num_heads_kv + kv_head) * sh.rows_per_kv_head + m;
}

// Element offsets of row m's out ([b, s_q, h_q, 512], element 0) and lse ([b, h_q, s_q]).
__device__ __forceinline__ int64_t out_offset(const AttentionShape& sh, int batch, const QueryRow& row) {
  return static_cast<int64_t>(batch) * sh.out_batch_stride + static_cast<int64_t>(row.s) * sh.out_row_stride +
         static_cast<int64_t>(row.q_head) * sh.out_head_stride;
}
__device__ __forceinline__ int64_t lse_offset(const AttentionShape& sh, int batch, const QueryRow& row) {
  return (static_cast<int64_t>(batch) * sh.num_heads_q + row.q_head) * sh.seqlen_q + row.s;
}

// ---- reporting bad values ---------------------------------------------------------------------

__device__ __forceinline__ void report(const DecodeParams& p, DeviceErrorFlag flag, int batch) {
  if (p.errors == nullptr) return;
  atomicOr(&p.errors->flags, flag);
  int32_t* first = flag == kErrorBlockIdOutOfRange ? &p.errors->block_id_batch
                   : flag == kErrorLengthOutOfRange ? &p.errors->length_batch
                                                    : &p.errors->schedule_batch;
  atomicMin(first, batch);
}

__device__ __forceinline__ bool length_in_range(const AttentionShape& sh, int32_t raw_len) {
  return raw_len >= 0 && static_cast<int64_t>(raw_len) <= capacity_of(sh);
}

__device__ __forceinline__ bool block_id_in_range(const AttentionShape& sh, int32_t block_id) {
  return block_id >= 0 && block_id < sh.num_cache_blocks;
}

}  // namespace flashmla::decode
