// The split-KV decode kernel for Hopper: K by TMA, both products on wgmma, and the "seesaw"
// schedule that overlaps one warpgroup's softmax with the other's tensor-core work.
//
// Grid: (ceil(rows_per_kv_head / 64), h_kv, num_sm_parts), persistent over the tile schedule;
// block: kSeesawThreads = 384 threads; dynamic shared memory: kSeesawSmemBytes
// (SeesawSharedStorage plus 1 KiB of alignment slack). CTA (x, y, z) computes query rows
// 64x .. 64x + 63 of KV head y (row m = s * group_size + g is q head y * group_size + g, token s)
// for every piece of part z (csrc/decode_common.cuh).
//
// Roles. One thread of warpgroup 2 is the producer. It walks the part's pieces and loads every KV
// block as 9 TMA boxes of 64 tokens x 64 channels into one of two buffers, each box completing on
// its own mbarrier so that Q·Kᵀ starts when the first lands. Block ids are range-checked: a bad one is reported and
// loaded as a box past the end of the cache, which TMA fills with zeros without reading. A buffer
// is refilled group by group as each group of sub-tiles loses its last reader (FreeGroup below),
// so much of the next pair is in flight while this pair is computed. The producer also checks the
// part's seal (csrc/schedule_seal.h) against the lengths and splits it read.
//
// Math. Warpgroups 0 and 1 (WG0, WG1) load each piece's Q tile (cp.async, zero rows past
// rows_per_kv_head), then take the piece's blocks in pairs, block 2i in buffer 0 and
// 2i + 1 in buffer 1. The 64 x 512 output is split by columns: WG0 holds O_L (columns 0..255),
// WG1 O_R (256..511). Per pair, side by side:
//   WG0: S0 = Q·K0ᵀ, its row max        WG1: S1 = Q·K1ᵀ, its row max
//   both: exchange the row maxima; m' = max(m, rowmax S0, rowmax S1), scale = exp(m - m'), but
//         m' = m (scale 1, no rescale) while m' exceeds m by at most kMaxGrowthLog2
//   WG0: P0 = exp(S0 - m'), stored       WG1: P1 = exp(S1 - m'), stored for WG0
//        for WG1; O_L = O_L·scale + P0·V0_L   O_R = O_R·scale + P1·V1_R    (own P from registers)
//   both: exchange P
//   WG0: O_L += P1·V1_L                  WG1: O_R += P0·V0_R              (other P from smem)
// The two softmaxes run at the same time and depend only on the exchanged maxima, so the chain
// from one pair's scores to its products is one softmax long; each warpgroup's own product
// starts while the other is still storing its P. P1 travels in sub-tile 8 of buffer 1 (K1's RoPE
// channels, dead once S1 is done; V is channels 0..511); P0 in its own sub-tile. Each warpgroup
// keeps its share of the row sums; they are added at the end of the piece, which writes out/lse
// (one split) or the split's float32 partial.
//
// Robustness: every length, token range and block-table column is clamped (decode_common.cuh),
// block ids are range-checked, rows outside the piece are masked to -inf by select and their V
// rows zeroed in shared memory before P·V, so NaN or Inf in unattended cache rows cannot reach
// an output; emptiness is decided from index bounds, so NaN in q propagates.
#include "decode_common.cuh"
#include "piece_trace.cuh"
#include "seesaw_tile.cuh"

namespace flashmla::seesaw {

// Named barriers (0 is __syncthreads). The first four pair the two math warpgroups (256 threads);
// the last two are one warpgroup's own. kMaxReady and kPReady are reached at different call sites
// by the two warpgroups (the two instantiations of pair_math), so they use the unaligned
// barrier.sync (bar.sync and bar.arrive are .aligned: one call site for all threads). Both are
// exchanges, so both sides wait anyway, which also lets compute-sanitizer's racecheck see the
// order (it does not take bar.arrive as a release).
enum Barrier : uint32_t {
  kQReady = 1,       // both: the piece's Q tile is in shared memory
  kMaxReady = 2,     // both ways: each warpgroup's block row maxima in block_max
  kPReady = 3,       // both ways: P0 in p0, P1 in kv[1] sub-tile 8
  kRowSumReady = 4,  // both: each warpgroup's row sums of the piece
  kWarpgroup0 = 5,
  kWarpgroup1 = 6,
  kOutStaged = 7,    // both: the piece's output rows are staged in shared memory, then copied out
};

constexpr int kRopeSubtile = kSubtilesK - 1;
// A row keeps its running max while a new block's scores exceed it by at most this (in log2 units
// of the softmax): P is then at most 2^8 = 256, exact enough in bf16 and fp16 and far from their
// overflow, and O needs no rescale for that row (a lazy max; the result is the same softmax).
constexpr float kMaxGrowthLog2 = 8.f;

// The groups of sub-tiles that become free together, in the order a pair frees them, each with
// one mbarrier that the four warps of its last reader arrive on: the RoPE of block 2i after S0
// (WG0); V0_L after P0·V0_L (WG0) and V1_R after P1·V1_R (WG1), the first products; V0_R after
// P0·V0_R (WG1) and V1_L with the RoPE of block 2i + 1 (carrying P1) after P1·V1_L (WG0).
// The producer refills them in that order, and each warpgroup's Q·Kᵀ takes the sub-tiles in the
// order they arrive.
enum FreeGroup : int { kFree0Rope, kFree0Left, kFree1Right, kFree0Right, kFree1LeftRope, kFreeGroups };
constexpr uint32_t kRopeMask = 1u << kRopeSubtile;
constexpr uint32_t kLeftMask = 0x0Fu;   // sub-tiles 0..3: output columns 0..255
constexpr uint32_t kRightMask = 0xF0u;  // sub-tiles 4..7: output columns 256..511
constexpr uint32_t kWarpArrivals = 4;   // the warps of one warpgroup
struct ScoreOrder0 {  // RoPE, V_L, V_R
  static __device__ __forceinline__ constexpr int subtile(int i) { return i == 0 ? kRopeSubtile : i - 1; }
};
struct ScoreOrder1 {  // V_R, V_L, RoPE
  static __device__ __forceinline__ constexpr int subtile(int i) { return i < 8 ? (i + 4) % 8 : kRopeSubtile; }
};

static_assert(kSeesawMathThreads == 2 * 128 && kSeesawThreads == 3 * 128, "two math warpgroups and a producer");
static_assert(kSubtilesV == 2 * kVSubtilesPerHalf && kRopeSubtile == kSubtilesV, "V is sub-tiles 0..7");
static_assert(offsetof(SeesawSharedStorage, q) % 1024 == 0 && offsetof(SeesawSharedStorage, kv) % 1024 == 0 &&
                  offsetof(SeesawSharedStorage, p0) % 1024 == 0,
              "sub-tiles start on 1024-byte boundaries relative to the aligned base");

// Shared-memory addresses of the plan's parts.
struct Smem {
  SeesawSharedStorage* s;
  uint32_t q;
  uint32_t kv[2];
  uint32_t p0;
  uint32_t full[2];  // kv_full[b][0]; sub-tile k's barrier at full[b] + 8 k
  uint32_t free;     // kv_free[0]; group g's barrier at free + 8 g
};

__device__ __forceinline__ Smem smem_of(uint8_t* raw) {
  const uint32_t raw_addr = ptx::smem_addr(raw);
  const uint32_t pad = (kSeesawSmemAlignment - raw_addr % kSeesawSmemAlignment) % kSeesawSmemAlignment;
  Smem m;
  m.s = reinterpret_cast<SeesawSharedStorage*>(raw + pad);
  m.q = ptx::smem_addr(m.s->q);
  m.p0 = ptx::smem_addr(m.s->p0);
  for (int b = 0; b < 2; ++b) {
    m.kv[b] = ptx::smem_addr(m.s->kv[b]);
    m.full[b] = ptx::smem_addr(m.s->kv_full[b]);
  }
  m.free = ptx::smem_addr(m.s->kv_free);
  return m;
}

// One warp's arrival on a group's free barrier: after the warp's last read has completed.
__device__ __forceinline__ void release(const Smem& sm, FreeGroup group, const Lane& lane) {
  ptx::mbarrier_arrive_if(sm.free + 8 * group, lane.gid == 0 && lane.tig == 0);
}

// ---- the producer ---------------------------------------------------------------------------

// Loads the sub-tiles of `mask` of a block into a buffer once their group is free (`used`: how
// many times the group was filled before).
__device__ __forceinline__ void load_group(const DecodeParams& p, const Smem& sm, int buffer, uint32_t mask,
                                           FreeGroup group, uint32_t used, int kv_head, int32_t block_id,
                                           uint64_t policy) {
  if (used > 0) ptx::mbarrier_wait(sm.free + 8 * group, (used - 1) & 1);
  const uint32_t full = buffer == 0 ? sm.full[0] : sm.full[1];
  const uint32_t tile = buffer == 0 ? sm.kv[0] : sm.kv[1];
#pragma unroll
  for (int sub = 0; sub < kSubtilesK; ++sub) {
    if ((mask >> sub & 1u) == 0) continue;
    ptx::mbarrier_arrive_expect_tx(full + 8 * sub, kSubtileBytes);
    ptx::tma_load_4d(tile + sub * kSubtileBytes, p.k_tensor_map, full + 8 * sub, sub * kSubtileCols, kv_head, 0,
                     block_id, policy);
  }
}

// Block n of a piece's block-table row, or a box past the end of the cache (zeros, never read)
// for an id out of range, which is reported.
__device__ __forceinline__ int32_t block_id_of(const DecodeParams& p, const int32_t* table, int n, int batch) {
  const int32_t block_id = table[n];
  if (decode::block_id_in_range(p.shape, block_id)) return block_id;
  decode::report(p, kErrorBlockIdOutOfRange, batch);
  return max(p.shape.num_cache_blocks, 1);
}

__device__ void produce(const DecodeParams& p, const Smem& sm, const decode::PartRange& r, int kv_head) {
  const AttentionShape& sh = p.shape;
  const uint64_t policy = ptx::l2_evict_first_policy();
  uint32_t pairs = 0;         // pairs loaded so far: fills of the buffer-0 groups
  uint32_t second_fills = 0;  // of them with a second block: fills of the buffer-1 groups
  uint32_t seal = r.fields_seal;
  if (r.end_batch >= r.begin_batch) seal = seal_absorb(seal, p.num_splits[r.begin_batch]);
  for (int batch = r.begin_batch; batch <= r.end_batch; ++batch) {
    const int32_t raw_len = p.cache_seqlens[batch];
    seal = seal_absorb(seal_absorb(seal, raw_len), p.num_splits[batch + 1]);
    if (!decode::length_in_range(sh, raw_len)) decode::report(p, kErrorLengthOutOfRange, batch);
    const decode::Piece pc = decode::piece_of(sh, r, batch, raw_len);
    const int32_t* table = p.block_table + static_cast<int64_t>(batch) * sh.block_table_batch_stride + pc.first_page;
    for (int n = 0; n < pc.num_blocks; n += 2) {
      const bool has_k1 = n + 1 < pc.num_blocks;
      const int32_t id0 = block_id_of(p, table, n, batch);
      const int32_t id1 = has_k1 ? block_id_of(p, table, n + 1, batch) : 0;
      load_group(p, sm, 0, kRopeMask, kFree0Rope, pairs, kv_head, id0, policy);
      load_group(p, sm, 0, kLeftMask, kFree0Left, pairs, kv_head, id0, policy);
      if (has_k1) load_group(p, sm, 1, kRightMask, kFree1Right, second_fills, kv_head, id1, policy);
      load_group(p, sm, 0, kRightMask, kFree0Right, pairs, kv_head, id0, policy);
      if (has_k1) {
        load_group(p, sm, 1, kLeftMask | kRopeMask, kFree1LeftRope, second_fills, kv_head, id1, policy);
        ++second_fills;
      }
      ++pairs;
    }
  }
  if (seal != r.seal) decode::report(p, kErrorStaleSchedule, r.begin_batch);
}

// ---- the math warpgroups --------------------------------------------------------------------

// What one math thread keeps across a piece's blocks.
template <typename T>
struct MathState {
  float o[kOutRegs];         // this warpgroup's 64 x 256 slice of O
  float s[kScoreRegs];       // the current block's scores, then probabilities
  uint32_t a[kKeySteps][4];  // P as the A operand
  float m[2];                // running max of the thread's two rows (raw q·k units)
  float sum[2];              // this thread's share of their sums
};

// The 64 query rows of the tile for sequence `batch`, by the 256 math threads: thread t copies
// 16-byte slot t % 8 of rows t / 8 and t / 8 + 32 in all 9 sub-tiles, into the swizzled layout.
// Rows past rows_per_kv_head are zero-filled.
template <typename T>
__device__ __forceinline__ void load_q(const DecodeParams& p, const Smem& sm, int batch, int row0, int kv_head,
                                       int thread) {
  const AttentionShape& sh = p.shape;
  const T* q = static_cast<const T*>(p.q);
  const int slot = thread % 8;
#pragma unroll
  for (int pass = 0; pass < kRowTile / 32; ++pass) {
    const int row = thread / 8 + 32 * pass;
    const int m = row0 + row;
    const bool valid = m < sh.rows_per_kv_head;
    const T* src = q;
    if (valid) {
      const decode::QueryRow qr = decode::query_row(sh, kv_head, m);
      src = q + static_cast<int64_t>(batch) * sh.q_batch_stride + static_cast<int64_t>(qr.s) * sh.q_row_stride +
            static_cast<int64_t>(qr.q_head) * sh.q_head_stride + slot * 8;
    }
    const uint32_t dst = sm.q + row * kRowBytes + ((slot ^ (row & 7)) << 4);
#pragma unroll
    for (int sub = 0; sub < kSubtilesK; ++sub) {
      ptx::cp_async_16_zfill(dst + sub * kSubtileBytes, valid ? src + sub * kSubtileCols : q, valid);
    }
  }
  ptx::cp_async_commit();
  ptx::cp_async_wait<0>();
  ptx::fence_proxy_async_shared();  // cp.async writes, then wgmma reads through the async proxy
}

// A staged output row (512 values of q's dtype) is padded by 16 bytes, so that the 4-byte values
// one warp stores at a time (8 rows, row r from bank 4r) fall on distinct banks.
constexpr int kStageRowBytes = kHeadDimV * 2 + 16;
static_assert(kRowTile * kStageRowBytes <= kSubtilesK * kSubtileBytes, "a staged output tile fits in the Q tile");

// Block n of the piece, relative to its first token: which rows (tokens) lie in the piece.
struct BlockRows {
  int lo;  // rows below lo precede the piece (only in a malformed schedule)
  int hi;  // rows from hi on are past the piece's end
  __device__ __forceinline__ bool partial() const { return lo > 0 || hi < kPageBlockSize; }
};

__device__ __forceinline__ BlockRows block_rows(const decode::Piece& pc, int n) {
  const int tok0 = (pc.first_page + n) * kPageBlockSize;
  return BlockRows{pc.tok_begin - tok0, pc.tok_end - tok0};
}

// Where a pair is in its piece.
struct PairInfo {
  int n;               // its first block within the piece
  bool has_k1;         // block n + 1 exists
  uint32_t parity[2];  // of this pair's fill of each buffer's full barriers
};

// The scores of block n + kWhich of the pair (sub-tiles in the order they were loaded), waited
// for and masked; returns each row's max over the block.
template <typename T, int kWhich, typename Order>
__device__ __forceinline__ void block_scores(MathState<T>& st, const Smem& sm, const Lane& lane,
                                             const decode::Piece& pc, const int (&key_end)[2], const PairInfo& pair,
                                             float (&block_max)[2]) {
  issue_scores<T, Order, 0, kSubtilesK>(st.s, sm.q, sm.kv[kWhich], sm.full[kWhich], pair.parity[kWhich]);
  wgmma::wait_group<0>();
  wgmma::fence_registers(st.s);
  const int block = pair.n + kWhich;
  const int tok = (pc.first_page + block) * kPageBlockSize;
  const int key_hi[2] = {key_end[0] - tok, key_end[1] - tok};
  mask_and_max(st.s, lane, block_rows(pc, block).lo, key_hi, block_max);
}

// Where block n + kWhich of the pair hands its probabilities to the other warpgroup: P0 in its own
// sub-tile, P1 in the RoPE sub-tile of buffer 1 (dead once S1 is done).
template <int kWhich>
__device__ __forceinline__ uint32_t p_tile(const Smem& sm) {
  return kWhich == 0 ? sm.p0 : sm.kv[1] + kRopeSubtile * kSubtileBytes;
}

// The V rows of block n + kWhich in warpgroup kWg's half that lie outside the piece are zeroed
// (a sequence's last block holds other tokens past its end, whose values, NaN say, would survive
// P = 0 in P·V). For the other warpgroup's block, waiting on its full barriers first makes its
// TMA writes visible to this warpgroup, which has not read it; its own block's scores waited on
// them already.
template <int kWhich, int kWg>
__device__ __forceinline__ void prepare_v_half(const Smem& sm, const decode::Piece& pc, const PairInfo& pair,
                                               int thread_in_wg, uint32_t wg_barrier) {
  if constexpr (kWhich != kWg) {
#pragma unroll
    for (int sub = 0; sub < kVSubtilesPerHalf; ++sub) {
      ptx::mbarrier_wait(sm.full[kWhich] + 8 * (kWg * kVSubtilesPerHalf + sub), pair.parity[kWhich]);
    }
  }
  const BlockRows rows = block_rows(pc, pair.n + kWhich);
  if (rows.partial()) clear_rows_outside(sm.kv[kWhich], kWg, rows.lo, rows.hi, thread_in_wg, wg_barrier);
}

// One warpgroup's share of a pair. Warpgroup kWg computes S = Q·Kᵀ of block n + kWg (WG1 has none
// when the pair is a piece's single last block) and owns columns 256·kWg .. 256·kWg + 255 of O.
// Both warpgroups compute their scores side by side, exchange the blocks' row maxima (kMaxReady),
// so that both take the same new max m = max(m, rowmax S0, rowmax S1), and then run their
// softmaxes side by side: P_k = exp(S_k - m), stored for the other warpgroup, and
//   O_half = O_half·exp(m_old - m) + P_own·V_own,half   (P_own from registers)
//                                  + P_other·V_other,half (P_other from shared memory, kPReady).
template <typename T, int kWg>
__device__ __forceinline__ void pair_math(const DecodeParams& p, const Smem& sm, MathState<T>& st, const Lane& lane,
                                          int thread_in_wg, const decode::Piece& pc, const int (&key_end)[2],
                                          const PairInfo& pair) {
  constexpr int kOther = 1 - kWg;
  constexpr uint32_t kOwnBarrier = kWg == 0 ? kWarpgroup0 : kWarpgroup1;
  const float scale_log2 = p.shape.softmax_scale_log2;
  const bool has_own = kWg == 0 || pair.has_k1;
  const bool has_other = kWg == 1 || pair.has_k1;

  float block_max[2] = {-INFINITY, -INFINITY};
  if (has_own) {
    if constexpr (kWg == 0) {
      block_scores<T, 0, ScoreOrder0>(st, sm, lane, pc, key_end, pair, block_max);
      release(sm, kFree0Rope, lane);
    } else {
      block_scores<T, 1, ScoreOrder1>(st, sm, lane, pc, key_end, pair, block_max);
    }
  }
  if (lane.tig == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) sm.s->block_max[kWg][lane.row(h)] = block_max[h];
  }
  ptx::named_barrier_sync_unaligned(kMaxReady, kSeesawMathThreads);
  float scale[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float m = fmaxf(st.m[h], fmaxf(block_max[h], sm.s->block_max[kOther][lane.row(h)]));
    // Keep the old max while the new one exceeds it by at most kMaxGrowthLog2 (P then stays
    // at most 2^kMaxGrowthLog2, and O needs no rescale); -inf or NaN growth takes the new max.
    if ((m - st.m[h]) * scale_log2 <= kMaxGrowthLog2) {
      scale[h] = 1.f;
      continue;
    }
    scale[h] = exp2_fast((st.m[h] - safe_max(m)) * scale_log2);
    st.m[h] = m;
  }
  float block_sum[2] = {0.f, 0.f};
  if (has_own) {
    exponentiate(st.s, st.m, scale_log2, block_sum);
    pack_p<T>(st.s, st.a);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) st.sum[h] = st.sum[h] * scale[h] + block_sum[h];
  rescale(st.o, scale);
  // Both blocks' scores are done (kMaxReady), so their V rows may be zeroed.
  if (has_own) prepare_v_half<kWg, kWg>(sm, pc, pair, thread_in_wg, kOwnBarrier);
  if (has_other) prepare_v_half<kOther, kWg>(sm, pc, pair, thread_in_wg, kOwnBarrier);
  if (has_own) {
    issue_pv<T>(st.o, st.a, sm.kv[kWg], kWg);
    store_p<T>(st.s, lane, p_tile<kWg>(sm));
  }
  ptx::named_barrier_sync_unaligned(kPReady, kSeesawMathThreads);
  if (has_other) issue_pv<T>(st.o, p_tile<kOther>(sm), sm.kv[kOther], kWg);

  // Each product's buffer half is released as soon as it is done (the first, while the second
  // runs, by a predicated arrive rather than a branch; see ptx::mbarrier_arrive_if).
  constexpr FreeGroup kOwnGroup = kWg == 0 ? kFree0Left : kFree1Right;
  constexpr FreeGroup kOtherGroup = kWg == 0 ? kFree1LeftRope : kFree0Right;
  if (has_own && has_other) {
    wgmma::wait_group<1>();
    release(sm, kOwnGroup, lane);
    wgmma::wait_group<0>();
    release(sm, kOtherGroup, lane);
  } else {
    wgmma::wait_group<0>();
    release(sm, has_own ? kOwnGroup : kOtherGroup, lane);
  }
  wgmma::fence_registers(st.o);
}

// Copies the staged rows [0, valid_rows) out: thread t copies quarter t % 4 of row t / 4 to
// dst_of(row) + the quarter, then waits until its copy has read shared memory. The barriers order
// the staging writes before the copies and the copies' reads before the next use of the Q tile.
template <typename T, typename DstOf>
__device__ __forceinline__ void copy_out_staged(const Smem& sm, int valid_rows, DstOf dst_of) {
  constexpr int kQuarterBytes = kHeadDimV * static_cast<int>(sizeof(T)) / 4;
  ptx::fence_proxy_async_shared();  // the staged rows, then the bulk copies read them
  ptx::named_barrier_sync(kOutStaged, kSeesawMathThreads);
  const int thread = static_cast<int>(threadIdx.x);
  const int row = thread / 4;
  if (row < valid_rows) {
    uint8_t* dst = reinterpret_cast<uint8_t*>(dst_of(row)) + (thread % 4) * kQuarterBytes;
    ptx::bulk_store(dst, sm.q + row * kStageRowBytes + (thread % 4) * kQuarterBytes, kQuarterBytes);
    ptx::bulk_commit();
    ptx::bulk_wait_read<0>();
  }
  ptx::named_barrier_sync(kOutStaged, kSeesawMathThreads);
}

// Writes the piece's result for this thread's two rows and this warpgroup's 256 columns: out and
// lse for a sequence's only split, else the split's float32 partial and its lse. A final output
// of more than 32 rows goes through shared memory (the Q tile, free once both warpgroups' last
// scores are done) and out by bulk copies of whole rows (out's rows are 16-byte aligned: the host
// checks it): stored straight from registers, each warp's store fills half a sector in each of 8
// rows, which cost 1-2% of the time of the benchmark's 64-row tiles. With 16 or 32 rows the
// staging's barriers and wait cost more (up to 0.7%) than they save. The float32 partials fill whole
// sectors and do not fit the Q tile at once; staging them in two rounds measured slower.
template <typename T>
__device__ __forceinline__ void store_piece(const DecodeParams& p, const Smem& sm, const MathState<T>& st,
                                            const Lane& lane, int wg, int row0, int kv_head, const decode::Piece& pc,
                                            const decode::PieceOutput& out, const int (&key_end)[2],
                                            const trace::Tracer& tracer, int piece) {
  const AttentionShape& sh = p.shape;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = st.sum[h];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (lane.tig == 0) sm.s->row_sum[wg][lane.row(h)] = sum;
  }
  ptx::named_barrier_sync(kRowSumReady, kSeesawMathThreads);
  tracer.mark(piece, trace::kRowSumsReady);

  // Each row's normaliser and lse; its lse written by one thread.
  float inv[2];
  bool attends_any[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = row0 + lane.row(h);
    const float total = sm.s->row_sum[0][lane.row(h)] + sm.s->row_sum[1][lane.row(h)];
    const bool attends = key_end[h] > pc.tok_begin;
    attends_any[h] = attends;
    inv[h] = attends ? 1.f / total : 0.f;
    if (m >= sh.rows_per_kv_head || wg != 0 || lane.tig != 0) continue;
    const float lse = attends ? st.m[h] * sh.softmax_scale + logf(total) : (out.is_final ? INFINITY : -INFINITY);
    const decode::QueryRow qr = decode::query_row(sh, kv_head, m);
    if (out.is_final) {
      p.lse[decode::lse_offset(sh, pc.batch, qr)] = lse;
    } else {
      p.lse_accum[decode::accum_row(sh, out.split_row, kv_head, m)] = lse;
    }
  }
  tracer.mark(piece, trace::kLseDone);
  const int valid_rows = min(sh.rows_per_kv_head - row0, kRowTile);
  // Output value i of row h; exactly 0 where the row attends no key of the piece.
  auto value = [&](int h, int i) { return attends_any[h] ? st.o[i] * inv[h] : 0.f; };
  const int col0 = wg * kOutCols + 2 * lane.tig;  // of the thread's first value pair
  // Stores the thread's value pairs, packed by pack(lo, hi), straight from registers at
  // row_of(row) + col0 + 8 j.
  auto store_direct = [&](auto row_of, auto pack) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (lane.row(h) >= valid_rows) continue;  // padding row of the last tile
      auto* dst = row_of(lane.row(h)) + col0;
#pragma unroll
      for (int j = 0; j < kOutChunks; ++j) {
        auto pair = pack(value(h, 4 * j + 2 * h), value(h, 4 * j + 2 * h + 1));
        *reinterpret_cast<decltype(pair)*>(dst + 8 * j) = pair;
      }
    }
  };

  if (out.is_final) {
    auto out_row = [&](int r) {
      return static_cast<T*>(p.out) + decode::out_offset(sh, pc.batch, decode::query_row(sh, kv_head, row0 + r));
    };
    if (valid_rows > kRowTile / 2) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint32_t dst = sm.q + lane.row(h) * kStageRowBytes + col0 * static_cast<int>(sizeof(T));
#pragma unroll
        for (int j = 0; j < kOutChunks; ++j) {
          ptx::st_shared_u32(dst + 16 * j, pack2<T>(value(h, 4 * j + 2 * h), value(h, 4 * j + 2 * h + 1)));
        }
      }
      tracer.mark(piece, trace::kStaged);
      copy_out_staged<T>(sm, valid_rows, out_row);
      return;
    }
    store_direct(out_row, [](float lo, float hi) { return pack2<T>(lo, hi); });
    return;
  }

  auto partial_row = [&](int r) {
    return p.o_accum + decode::accum_row(sh, out.split_row, kv_head, row0 + r) * kHeadDimV;
  };
  store_direct(partial_row, [](float lo, float hi) { return make_float2(lo, hi); });
}

template <typename T>
__device__ void math(const DecodeParams& p, const Smem& sm, const decode::PartRange& r, int wg, int row0,
                     int kv_head, const trace::Tracer& tracer) {
  const AttentionShape& sh = p.shape;
  const int thread_in_wg = static_cast<int>(threadIdx.x) % 128;
  const Lane lane = lane_of(thread_in_wg);
  uint32_t uses[2] = {0, 0};  // fills of each buffer so far
  MathState<T> st;
  for (int batch = r.begin_batch; batch <= r.end_batch; ++batch) {
    const int piece = batch - r.begin_batch;
    tracer.mark(piece, trace::kPieceStart);
    const decode::Piece pc = decode::piece_of(sh, r, batch, p.cache_seqlens[batch]);
    const decode::PieceOutput out = decode::output_of(p, r, batch, p.num_splits[batch], p.num_splits[batch + 1]);
    tracer.piece(piece, batch, pc.num_blocks, out.is_final);
    int key_end[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) key_end[h] = decode::key_end_of_row(sh, pc, row0 + lane.row(h));
#pragma unroll
    for (int i = 0; i < kOutRegs; ++i) st.o[i] = 0.f;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      st.m[h] = -INFINITY;
      st.sum[h] = 0.f;
    }
    if (pc.num_blocks > 0) load_q<T>(p, sm, batch, row0, kv_head, static_cast<int>(threadIdx.x));
    // Also for empty pieces: past this barrier both warpgroups are done with the last piece's
    // shared row sums, so they may be written again.
    ptx::named_barrier_sync(kQReady, kSeesawMathThreads);
    tracer.mark(piece, trace::kQReady);
    for (int n = 0; n < pc.num_blocks; n += 2) {
      PairInfo pair;
      pair.n = n;
      pair.has_k1 = n + 1 < pc.num_blocks;
      pair.parity[0] = uses[0] & 1;
      pair.parity[1] = uses[1] & 1;
      if (wg == 0) {
        pair_math<T, 0>(p, sm, st, lane, thread_in_wg, pc, key_end, pair);
      } else {
        pair_math<T, 1>(p, sm, st, lane, thread_in_wg, pc, key_end, pair);
      }
      ++uses[0];
      if (pair.has_k1) ++uses[1];
      if (n == 0) tracer.mark(piece, trace::kFirstPairDone);
    }
    tracer.mark(piece, trace::kPairsDone);
    if (batch == r.end_batch) ptx::griddep_launch_dependents();
    store_piece<T>(p, sm, st, lane, wg, row0, kv_head, pc, out, key_end, tracer, piece);
    tracer.mark(piece, trace::kPieceDone);
  }
  tracer.end();
}

template <typename T>
__device__ __forceinline__ void decode_cta(const DecodeParams& p, uint8_t* raw_smem) {
  const AttentionShape& sh = p.shape;
  const int row0 = static_cast<int>(blockIdx.x) * kRowTile;
  const int kv_head = static_cast<int>(blockIdx.y);
  const int part = static_cast<int>(blockIdx.z);
  const Smem sm = smem_of(raw_smem);
  const int wg = static_cast<int>(threadIdx.x) / 128;

  // The producer's first load waits for the tensor map: fetch it while the barriers are set up.
  if (threadIdx.x == 2 * 128) ptx::prefetch_tensormap(p.k_tensor_map);
  if (threadIdx.x == 0) {
    for (int b = 0; b < 2; ++b) {
      for (int sub = 0; sub < kSubtilesK; ++sub) ptx::mbarrier_init(sm.full[b] + 8 * sub, 1);
    }
    for (int g = 0; g < kFreeGroups; ++g) ptx::mbarrier_init(sm.free + 8 * g, kWarpArrivals);
    ptx::fence_proxy_async_shared();  // the initialised barriers, before TMA completes on them
  }
  // Its own barriers in a trace build (piece_trace.cuh); else nothing.
  const trace::Tracer tracer = trace::begin(&sm.s->row_sum[0][0]);
  __syncthreads();

  // Wait for the kernel that wrote the schedule when launched programmatically (else a no-op).
  ptx::griddep_wait();
  // The combine kernel is scheduled once every CTA has issued griddepcontrol.launch_dependents:
  // a CTA without a part issues it here, the others at their last piece's store. Issued at the
  // start instead, it let the combine's CTAs crowd onto the first SMs to free up, and sequences
  // cut into many splits merged slower (docs/perf-notes.md, ninth session).
  if (part >= p.num_sm_parts || kv_head >= sh.num_heads_kv || sh.batch <= 0) {
    ptx::griddep_launch_dependents();
    return;
  }
  const decode::PartRange r = decode::read_part(p, part);

  if (wg == 2) {
    ptx::setmaxnreg_dec<kSeesawProducerRegisters>();
    if (threadIdx.x == 2 * 128) produce(p, sm, r, kv_head);
    ptx::griddep_launch_dependents();
  } else {
    ptx::setmaxnreg_inc<kSeesawMathRegisters>();
    math<T>(p, sm, r, wg, row0, kv_head, tracer);
  }
}

}  // namespace flashmla::seesaw

extern "C" __global__ void __launch_bounds__(flashmla::kSeesawThreads, 1)
    flashmla_decode_seesaw_bf16(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) uint8_t seesaw_smem[];
  flashmla::seesaw::decode_cta<__nv_bfloat16>(p, seesaw_smem);
}

extern "C" __global__ void __launch_bounds__(flashmla::kSeesawThreads, 1)
    flashmla_decode_seesaw_fp16(const __grid_constant__ DecodeParams p) {
  extern __shared__ __align__(1024) uint8_t seesaw_smem[];
  flashmla::seesaw::decode_cta<__half>(p, seesaw_smem);
}
