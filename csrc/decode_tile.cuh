// The decode kernel's building blocks: the cp.async loads of the Q tile and of one KV block into
// the swizzled layout of smem_sizes.h, and the per-warp math of one 64-token KV block (S = Q·Kᵀ, the
// online softmax, O += P·V). csrc/decode_sm90.cu strings them together; docs/kernels.md has the plan.
//
// Warp roles (8 warps): warp w owns row band b = w % 4 (tile rows 16b..16b+15) and half h = w / 4.
// In S = Q·Kᵀ it computes the band's scores against keys 32h..32h+31 of the block; in O += P·V it
// accumulates the band's output columns 256h..256h+255 over all 64 keys. The two warps of a band
// (w and w ^ 4) exchange row maxima and sums through shared memory and meet at named barrier 1 + b.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), with
// gid = lane / 4 and tig = lane % 4:
//   A (16x16, row-major):  reg 0 = (gid, 2tig..+1), 1 = (gid+8, 2tig..), 2 = (gid, 2tig+8..), 3 = (gid+8, 2tig+8..)
//   B (16x8, k x n):       reg 0 = (k 2tig..+1, n gid), reg 1 = (k 2tig+8..+9, n gid)
//   C (16x8, f32):         c0, c1 = (gid, 2tig..+1), c2, c3 = (gid+8, 2tig..+1)
// ldmatrix.x4 gives register j the 8x8 matrix whose rows lanes 8j..8j+7 addressed, lane l holding
// row l/4, columns 2(l%4)..+1 (with .trans: column l/4, rows 2(l%4)..+1). So:
//   A from a row-major [row][k] tile: lane l addresses row (l % 16), k chunk (l / 16).
//   B for S (K stored [token][channel] = n-major): lane l addresses token (l % 8) + 8 (l / 16),
//     channel chunk (l / 8) % 2; registers 0,1 are B of n-tile 0 and 2,3 of n-tile 1.
//   B for P·V (V stored [token][channel] = k-major) with .trans: lane l addresses token (l % 16),
//     channel chunk (l / 16); registers 0,1 are B of n-tile 0 and 2,3 of n-tile 1.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "params.h"
#include "ptx.cuh"
#include "smem_sizes.h"

namespace flashmla::decode {

constexpr int kWarps = kDecodeThreads / 32;
constexpr int kBandRows = 16;                            // rows per warp (the mma M)
constexpr int kKeysPerWarp = kPageBlockSize / 2;         // keys of one block per warp in S
constexpr int kScoreTiles = kKeysPerWarp / 8;            // n-tiles of 8 keys per warp in S
constexpr int kColsPerWarp = kHeadDimV / 2;              // output columns per warp in P·V
constexpr int kOutTiles = kColsPerWarp / 8;              // n-tiles of 8 columns per warp in P·V
constexpr int kChunksPerRow = kHeadDimK / 8;             // 16-byte chunks in a 576-channel row
constexpr int kSubtileCols = 64;                         // channels per swizzled sub-tile
constexpr int kRowBytes = kSubtileCols * 2;              // 128
constexpr int kSubtileBytes = kPageBlockSize * kRowBytes;  // 8 KiB: 64 rows x 128 bytes
constexpr int kSubtiles = kHeadDimK / kSubtileCols;      // 9
constexpr int kTileChunks = kPageBlockSize * kChunksPerRow;
constexpr int kChunksPerThread = kTileChunks / kDecodeThreads;  // 18

static_assert(kWarps == 8 && kRowTile == 4 * kBandRows, "4 row bands x 2 halves");
static_assert(kPageBlockSize == kRowTile, "Q and KV tiles share one layout");
static_assert(kHeadDimK % kSubtileCols == 0 && kHeadDimV % (2 * kSubtileCols) == 0, "whole sub-tiles");
static_assert(kTileChunks % kDecodeThreads == 0, "every thread loads the same number of chunks");
static_assert(kColsPerWarp % kSubtileCols == 0, "a warp's V columns are whole sub-tiles");
static_assert(sizeof(DecodeSharedStorage::q) == kSubtiles * kSubtileBytes, "Q tile size");
static_assert(sizeof(DecodeSharedStorage::kv[0]) == kSubtiles * kSubtileBytes, "KV tile size");
static_assert(sizeof(DecodeSharedStorage::p) == kSubtileBytes, "P is one 64x64 sub-tile");
static_assert(offsetof(DecodeSharedStorage, kv) % 128 == 0 && offsetof(DecodeSharedStorage, p) % 128 == 0,
              "tiles start on 128-byte lines, so the XOR swizzle spreads ldmatrix rows over all banks");

// The element types: bf16 and fp16 differ only in the mma and the rounding of P and out.
template <typename T>
struct Elem;

template <>
struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    ptx::mma_m16n8k16_bf16(d, a, b0, b1);
  }
  // Two floats rounded to nearest even; `lo` lands in the low half (the lower column / address).
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
};

template <>
struct Elem<__half> {
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    ptx::mma_m16n8k16_fp16(d, a, b0, b1);
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
};

// The value itself, but opaque to the optimiser. The per-block functions pass their shared-memory
// bases and the lane index through this, so that the compiler computes the dozens of swizzled
// addresses and key indices next to their use instead of hoisting them out of the block loop
// into registers that stay live beside the 128 accumulators (that spilled).
__device__ __forceinline__ uint32_t opaque(uint32_t value) {
  uint32_t result;
  asm volatile("mov.b32 %0, %1;\n" : "=r"(result) : "r"(value));
  return result;
}

// Tile loads: thread t copies 16-byte slot t % 8 of the 128-byte sub-rows of rows t / 8 and
// t / 8 + 32, in all 9 sub-tiles: 18 cp.async per tile, each warp covering four whole 128-byte
// lines per instruction. Everything but the two row addresses is a compile-time offset.
constexpr int kLoadRowsPerPass = kDecodeThreads / 8;  // 32
constexpr int kLoadPasses = kPageBlockSize / kLoadRowsPerPass;  // 2
static_assert(kLoadPasses * kSubtiles == kChunksPerThread, "18 chunks per thread");

// The smem offset of this thread's slot in pass 0, sub-tile 0 (other passes and sub-tiles add
// pass * 32 * 128 and sub * 8 KiB; rows t / 8 and t / 8 + 32 have the same row % 8).
__device__ __forceinline__ uint32_t load_slot_offset() {
  const int row = static_cast<int>(threadIdx.x) / 8;
  return static_cast<uint32_t>(row * kRowBytes + (((threadIdx.x % 8) ^ (row & 7)) << 4));
}

// The 64 query rows of this CTA for sequence `batch`: tile row r is row m = row0 + r of the KV
// head's rows_per_kv_head (m = s * group_size + g, q head = kv_head * group_size + g). Rows past
// rows_per_kv_head are zero-filled.
template <typename T>
__device__ __forceinline__ void load_q_tile(const DecodeParams& p, uint32_t q_smem, int batch, int row0,
                                            int kv_head) {
  const AttentionShape& sh = p.shape;
  const T* q = static_cast<const T*>(p.q);
  const uint32_t dst = q_smem + load_slot_offset();
#pragma unroll
  for (int pass = 0; pass < kLoadPasses; ++pass) {
    const int m = row0 + static_cast<int>(threadIdx.x) / 8 + pass * kLoadRowsPerPass;
    const bool valid = m < sh.rows_per_kv_head;
    const T* src = q;
    if (valid) {
      const int s = m / sh.group_size;
      const int head = kv_head * sh.group_size + (m - s * sh.group_size);
      src = q + static_cast<int64_t>(batch) * sh.q_batch_stride + static_cast<int64_t>(s) * sh.q_row_stride +
            static_cast<int64_t>(head) * sh.q_head_stride + (threadIdx.x % 8) * 8;
    }
#pragma unroll
    for (int sub = 0; sub < kSubtiles; ++sub) {
      ptx::cp_async_16_zfill(dst + pass * kLoadRowsPerPass * kRowBytes + sub * kSubtileBytes,
                             valid ? src + sub * kSubtileCols : q, valid);
    }
  }
}

// One KV block: tokens page*64 + r for r in [0, 64) of sequence `batch`. Rows outside
// [row_lo, row_hi) (not part of this piece) and every row of a block id outside
// [0, num_cache_blocks) are zero-filled, never read. The caller guarantees page < ceil(L / 64).
template <typename T>
__device__ __forceinline__ void load_kv_tile(const DecodeParams& p, uint32_t kv_smem, int batch, int page,
                                             int row_lo, int row_hi, int kv_head) {
  const AttentionShape& sh = p.shape;
  const T* k_cache = static_cast<const T*>(p.k_cache);
  const int32_t block_id = p.block_table[static_cast<int64_t>(batch) * sh.block_table_batch_stride + page];
  const bool block_ok = block_id >= 0 && block_id < sh.num_cache_blocks;
  const uint32_t dst = kv_smem + load_slot_offset();
#pragma unroll
  for (int pass = 0; pass < kLoadPasses; ++pass) {
    const int row = static_cast<int>(threadIdx.x) / 8 + pass * kLoadRowsPerPass;
    const bool valid = block_ok && row >= row_lo && row < row_hi;
    const T* src = k_cache;
    if (valid) {
      src = k_cache + static_cast<int64_t>(block_id) * sh.k_block_stride + static_cast<int64_t>(row) * sh.k_token_stride +
            static_cast<int64_t>(kv_head) * sh.k_head_stride + (threadIdx.x % 8) * 8;
    }
#pragma unroll
    for (int sub = 0; sub < kSubtiles; ++sub) {
      ptx::cp_async_16_zfill(dst + pass * kLoadRowsPerPass * kRowBytes + sub * kSubtileBytes,
                             valid ? src + sub * kSubtileCols : k_cache, valid);
    }
  }
}

// What one thread keeps across the KV blocks of a piece: its slice of the 16x256 output
// accumulator of its warp, and the running max (raw q·k units) and partial sum of its two rows
// (gid and gid + 8 of the band).
struct Accumulator {
  float o[kOutTiles][4];
  float row_max[2];
  float row_sum[2];  // this thread's share; the band's two warps and four lanes are added at the end
};

__device__ __forceinline__ void reset(Accumulator& acc) {
#pragma unroll
  for (int nt = 0; nt < kOutTiles; ++nt) {
#pragma unroll
    for (int c = 0; c < 4; ++c) acc.o[nt][c] = 0.f;
  }
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    acc.row_max[rr] = -INFINITY;
    acc.row_sum[rr] = 0.f;
  }
}

// S[16 rows x 32 keys] of this warp: the band's Q rows times keys 32*half.. of the KV block.
template <typename T>
__device__ __forceinline__ void compute_scores(uint32_t q_smem, uint32_t kv_smem, int band, int half,
                                               float (&s)[kScoreTiles][4]) {
  const int lane = static_cast<int>(opaque(threadIdx.x)) % 32;
#pragma unroll
  for (int nt = 0; nt < kScoreTiles; ++nt) {
#pragma unroll
    for (int c = 0; c < 4; ++c) s[nt][c] = 0.f;
  }
  const int swz = lane & 7;  // every addressed row is ≡ lane (mod 8)
  const uint32_t a_row = opaque(q_smem) + (band * kBandRows + (lane & 15)) * kRowBytes;
  const int a_chunk = lane >> 4;
  const uint32_t b_row = opaque(kv_smem) + (half * kKeysPerWarp + (lane & 7) + ((lane >> 4) << 3)) * kRowBytes;
  const int b_chunk = (lane >> 3) & 1;
#pragma unroll
  for (int sub = 0; sub < kSubtiles; ++sub) {
#pragma unroll
    for (int kk = 0; kk < kSubtileCols / 16; ++kk) {
      uint32_t a[4];
      ptx::ldmatrix_x4(a_row + sub * kSubtileBytes + (((2 * kk + a_chunk) ^ swz) << 4), a[0], a[1], a[2], a[3]);
#pragma unroll
      for (int pair = 0; pair < kScoreTiles / 2; ++pair) {
        uint32_t b0, b1, b2, b3;
        ptx::ldmatrix_x4(b_row + pair * 16 * kRowBytes + sub * kSubtileBytes + (((2 * kk + b_chunk) ^ swz) << 4),
                         b0, b1, b2, b3);
        Elem<T>::mma(s[2 * pair], a, b0, b1);
        Elem<T>::mma(s[2 * pair + 1], a, b2, b3);
      }
    }
  }
}

// The online-softmax step of one KV block for this warp's scores, then P to shared memory.
// key_lo / key_hi[rr]: the attended keys of row rr, relative to the block's first token (a key k
// of the block is attended iff key_lo <= k < key_hi[rr]). Scores of other keys become -inf by
// select, so they cannot reach the max or the sum, whatever they hold.
template <typename T>
__device__ __forceinline__ void softmax_step(DecodeSharedStorage& smem, Accumulator& acc,
                                             float (&s)[kScoreTiles][4], int band, int half, int key_lo,
                                             const int (&key_hi)[2], float scale_log2) {
  const int lane = static_cast<int>(opaque(threadIdx.x)) % 32;
  const int gid = lane >> 2;
  const int tig = lane & 3;

  float block_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nt = 0; nt < kScoreTiles; ++nt) {
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int rr = c >> 1;
      const int key = half * kKeysPerWarp + nt * 8 + 2 * tig + (c & 1);
      const bool attended = key >= key_lo && key < key_hi[rr];
      s[nt][c] = attended ? s[nt][c] : -INFINITY;
      block_max[rr] = fmaxf(block_max[rr], s[nt][c]);
    }
  }
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    block_max[rr] = fmaxf(block_max[rr], __shfl_xor_sync(0xffffffffu, block_max[rr], 1));
    block_max[rr] = fmaxf(block_max[rr], __shfl_xor_sync(0xffffffffu, block_max[rr], 2));
    if (tig == 0) smem.row_max[half][band * kBandRows + gid + 8 * rr] = block_max[rr];
  }
  ptx::named_barrier_sync(1 + band, 64);

  float p_scale[2];  // subtract from s * scale_log2 to get log2 of the unnormalised probability
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int row = band * kBandRows + gid + 8 * rr;
    // Both warps of the band read both halves in the same order, so they agree on the max bitwise.
    const float new_max = fmaxf(acc.row_max[rr], fmaxf(smem.row_max[0][row], smem.row_max[1][row]));
    // A row with nothing attended so far keeps max -inf; use 0 so that -inf - max is -inf, not NaN.
    const float safe_max = new_max == -INFINITY ? 0.f : new_max;
    const float alpha = exp2f((acc.row_max[rr] - safe_max) * scale_log2);
    acc.row_max[rr] = new_max;
    acc.row_sum[rr] *= alpha;
#pragma unroll
    for (int nt = 0; nt < kOutTiles; ++nt) {
      acc.o[nt][2 * rr] *= alpha;
      acc.o[nt][2 * rr + 1] *= alpha;
    }
    p_scale[rr] = safe_max * scale_log2;
  }

#pragma unroll
  for (int nt = 0; nt < kScoreTiles; ++nt) {
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int rr = c >> 1;
      s[nt][c] = exp2f(fmaf(s[nt][c], scale_log2, -p_scale[rr]));
      acc.row_sum[rr] += s[nt][c];
    }
  }

  // P (rounded to T) into the swizzled 64x64 tile: row band*16 + gid (+8), keys 32*half + 8nt + 2tig.
  const uint32_t p_smem = opaque(ptx::smem_addr(smem.p));
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int row = band * kBandRows + gid + 8 * rr;
#pragma unroll
    for (int nt = 0; nt < kScoreTiles; ++nt) {
      const int chunk = half * (kKeysPerWarp / 8) + nt;
      const uint32_t addr = p_smem + row * kRowBytes + ((chunk ^ (row & 7)) << 4) + 4 * tig;
      const uint32_t packed = Elem<T>::pack(s[nt][2 * rr], s[nt][2 * rr + 1]);
      asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(packed) : "memory");
    }
  }
  ptx::named_barrier_sync(1 + band, 64);
}

// O[16 x 256] += P[16 x 64] · V[64 x 256]: the band's P rows (all 64 keys, both warps' halves)
// times V columns 256*half.. of the KV block.
template <typename T>
__device__ __forceinline__ void accumulate_pv(const DecodeSharedStorage& smem, uint32_t kv_smem, Accumulator& acc,
                                              int band, int half) {
  const int lane = static_cast<int>(opaque(threadIdx.x)) % 32;
  const int swz = lane & 7;
  const int chunk_sel = lane >> 4;
  const uint32_t p_row = opaque(ptx::smem_addr(smem.p)) + (band * kBandRows + (lane & 15)) * kRowBytes;
  const uint32_t v_row = opaque(kv_smem) + (lane & 15) * kRowBytes + half * (kColsPerWarp / kSubtileCols) * kSubtileBytes;
#pragma unroll
  for (int ks = 0; ks < kPageBlockSize / 16; ++ks) {
    uint32_t a[4];
    ptx::ldmatrix_x4(p_row + (((2 * ks + chunk_sel) ^ swz) << 4), a[0], a[1], a[2], a[3]);
#pragma unroll
    for (int np = 0; np < kOutTiles / 2; ++np) {
      uint32_t b0, b1, b2, b3;
      const uint32_t addr = v_row + ks * 16 * kRowBytes + (np >> 2) * kSubtileBytes +
                            (((2 * (np & 3) + chunk_sel) ^ swz) << 4);
      ptx::ldmatrix_x4_trans(addr, b0, b1, b2, b3);
      Elem<T>::mma(acc.o[2 * np], a, b0, b1);
      Elem<T>::mma(acc.o[2 * np + 1], a, b2, b3);
    }
  }
}

}  // namespace flashmla::decode
