// The math of the seesaw decode kernel for one warpgroup (128 threads, all 64 rows of the tile):
// S = Q·Kᵀ for one 64-token block, its mask and row max, the exponentials, P handed to the other
// warpgroup through shared memory, and O[64 x 256] += P·V. csrc/decode_seesaw_sm90.cu sequences
// them; the fragment layouts are in csrc/wgmma.cuh.
//
// Thread t of a warpgroup (warp w = t / 32, gid = lane / 4, tig = lane % 4) holds rows
// 16w + gid and 16w + gid + 8 of every 64-row fragment: element c of chunk j of the scores is row
// 16w + gid + 8 (c / 2), key 8j + 2tig + (c % 2); of the output, column 8j + 2tig + (c % 2) of the
// warpgroup's 256.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "config.h"
#include "pack.cuh"
#include "ptx.cuh"
#include "smem_sizes.h"
#include "wgmma.cuh"

namespace flashmla::seesaw {

constexpr int kScoreRegs = kPageBlockSize / 2;         // 32: a 64 x 64 f32 fragment per thread
constexpr int kScoreChunks = kPageBlockSize / 8;       // 8 chunks of 8 keys
constexpr int kOutCols = kHeadDimV / 2;                // 256 columns per warpgroup
constexpr int kOutRegs = kOutCols / 2;                 // 128
constexpr int kOutChunks = kOutCols / 8;               // 32
constexpr int kKeySteps = kPageBlockSize / 16;         // 4 k16 steps of P·V
constexpr int kRowBytes = kSubtileCols * 2;            // 128
constexpr int kGroupBytes = 8 * kRowBytes;             // 8 rows: the swizzle atom, 1024 bytes
constexpr int kVSubtilesPerHalf = kOutCols / kSubtileCols;  // 4

// The element types differ in the tensor-core instruction (and in pack2, pack.cuh).
template <typename T>
struct Elem;

template <>
struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ void qk(float (&d)[kScoreRegs], uint64_t a, uint64_t b) {
    wgmma::wgmma_m64n64k16_ss_bf16(d, a, b, 1);
  }
  static __device__ __forceinline__ void qk_overwrite(float (&d)[kScoreRegs], uint64_t a, uint64_t b) {
    wgmma::wgmma_m64n64k16_ss_bf16_overwrite(d, a, b);
  }
  static __device__ __forceinline__ void pv(float (&d)[kOutRegs], const uint32_t (&a)[4], uint64_t b) {
    wgmma::wgmma_m64n256k16_rs_bf16(d, a, b, 1);
  }
  static __device__ __forceinline__ void pv(float (&d)[kOutRegs], uint64_t a, uint64_t b) {
    wgmma::wgmma_m64n256k16_ss_bf16(d, a, b, 1);
  }
};

template <>
struct Elem<__half> {
  static __device__ __forceinline__ void qk(float (&d)[kScoreRegs], uint64_t a, uint64_t b) {
    wgmma::wgmma_m64n64k16_ss_fp16(d, a, b, 1);
  }
  static __device__ __forceinline__ void qk_overwrite(float (&d)[kScoreRegs], uint64_t a, uint64_t b) {
    wgmma::wgmma_m64n64k16_ss_fp16_overwrite(d, a, b);
  }
  static __device__ __forceinline__ void pv(float (&d)[kOutRegs], const uint32_t (&a)[4], uint64_t b) {
    wgmma::wgmma_m64n256k16_rs_fp16(d, a, b, 1);
  }
  static __device__ __forceinline__ void pv(float (&d)[kOutRegs], uint64_t a, uint64_t b) {
    wgmma::wgmma_m64n256k16_ss_fp16(d, a, b, 1);
  }
};

// Where this thread sits in its warpgroup.
struct Lane {
  int warp;  // 0..3 within the warpgroup
  int gid;
  int tig;
  __device__ __forceinline__ int row(int half) const { return 16 * warp + gid + 8 * half; }
};

__device__ __forceinline__ Lane lane_of(int thread_in_warpgroup) {
  const int lane = thread_in_warpgroup % 32;
  return Lane{thread_in_warpgroup / 32, lane / 4, lane % 4};
}

// Issues part of S = Q·Kᵀ for one block: sub-tiles Order::subtile(kBegin .. kEnd - 1) (the order
// their TMA loads were issued in), each as soon as it has landed, committed as one wgmma group;
// the caller waits for it. Part kBegin = 0 overwrites S, later parts accumulate. The fence after
// each wait keeps the warpgroup converged for ptxas (otherwise it serialises every wgmma of the
// kernel).
template <typename T, typename Order, int kBegin, int kEnd>
__device__ __forceinline__ void issue_scores(float (&s)[kScoreRegs], uint32_t q_tile, uint32_t kv_tile,
                                             uint32_t full_bars, uint32_t parity) {
  const uint64_t q_desc = wgmma::smem_desc_sw128(q_tile, 16, kGroupBytes);
  const uint64_t kv_desc = wgmma::smem_desc_sw128(kv_tile, 16, kGroupBytes);
  wgmma::fence();
#pragma unroll
  for (int i = kBegin; i < kEnd; ++i) {
    const int sub = Order::subtile(i);
    ptx::mbarrier_wait(full_bars + 8 * sub, parity);
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < kSubtileCols / 16; ++kk) {
      const uint32_t offset = sub * kSubtileBytes + kk * 32;
      const uint64_t a = wgmma::desc_plus(q_desc, offset);
      const uint64_t b = wgmma::desc_plus(kv_desc, offset);
      if (i == 0 && kk == 0) {
        Elem<T>::qk_overwrite(s, a, b);
      } else {
        Elem<T>::qk(s, a, b);
      }
    }
  }
  wgmma::commit_group();
}

// Scores of keys a row does not attend become -inf by select (never arithmetic, so NaN in an
// unattended cache row cannot leak); returns each of the thread's two rows' max over the block.
// Key k of the block is attended by row `half` iff key_lo <= k < key_hi[half].
// Most blocks are attended whole by every row of the warp; they skip the selects.
__device__ __forceinline__ void mask_and_max(float (&s)[kScoreRegs], const Lane& lane, int key_lo,
                                             const int (&key_hi)[2], float (&block_max)[2]) {
  block_max[0] = -INFINITY;
  block_max[1] = -INFINITY;
  const bool whole = key_lo <= 0 && key_hi[0] >= kPageBlockSize && key_hi[1] >= kPageBlockSize;
  if (__all_sync(0xffffffffu, whole)) {
#pragma unroll
    for (int i = 0; i < kScoreRegs; ++i) block_max[(i >> 1) & 1] = fmaxf(block_max[(i >> 1) & 1], s[i]);
  } else {
#pragma unroll
    for (int j = 0; j < kScoreChunks; ++j) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int key = 8 * j + 2 * lane.tig + (c & 1);
        const bool attended = key >= key_lo && key < key_hi[c >> 1];
        s[4 * j + c] = attended ? s[4 * j + c] : -INFINITY;
        block_max[c >> 1] = fmaxf(block_max[c >> 1], s[4 * j + c]);
      }
    }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 1));
    block_max[h] = fmaxf(block_max[h], __shfl_xor_sync(0xffffffffu, block_max[h], 2));
  }
}

// A running max that is still -inf (nothing attended yet) is used as 0, so that -inf - max stays
// -inf instead of NaN.
__device__ __forceinline__ float safe_max(float m) { return m == -INFINITY ? 0.f : m; }

// 2^x by the special-function unit alone (ex2.approx.ftz: relative error about 2^-22, results
// below 2^-126 flushed to zero). exp2f adds three instructions per call to scale such inputs, and
// P that small vanishes in sums where the row's max has P of at least 1.
__device__ __forceinline__ float exp2_fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// exp(s - m) in place (scale folded into log2 units), and the thread's share of each row's sum.
__device__ __forceinline__ void exponentiate(float (&s)[kScoreRegs], const float (&m)[2], float scale_log2,
                                             float (&sum)[2]) {
  const float bias[2] = {safe_max(m[0]) * scale_log2, safe_max(m[1]) * scale_log2};
  sum[0] = 0.f;
  sum[1] = 0.f;
#pragma unroll
  for (int i = 0; i < kScoreRegs; ++i) {
    const int h = (i >> 1) & 1;
    s[i] = exp2_fast(fmaf(s[i], scale_log2, -bias[h]));
    sum[h] += s[i];
  }
}

// P in the A-fragment layout of the P·V product: k-step kk takes score chunks 2kk and 2kk + 1.
template <typename T>
__device__ __forceinline__ void pack_p(const float (&s)[kScoreRegs], uint32_t (&a)[kKeySteps][4]) {
#pragma unroll
  for (int kk = 0; kk < kKeySteps; ++kk) {
    a[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
    a[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
    a[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
    a[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

// P rounded to T into a swizzled 64 x 64 sub-tile, the K-major A operand
// of the other warpgroup's P·V. Each warp's stores touch all 32 banks once (row % 8 = gid picks
// the chunk). The async-proxy fence makes them visible to that warpgroup's wgmma.
template <typename T>
__device__ __forceinline__ void store_p(const float (&s)[kScoreRegs], const Lane& lane, uint32_t tile) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = lane.row(h);
#pragma unroll
    for (int j = 0; j < kScoreChunks; ++j) {
      const uint32_t addr = tile + row * kRowBytes + ((j ^ (row & 7)) << 4) + 4 * lane.tig;
      ptx::st_shared_u32(addr, pack2<T>(s[4 * j + 2 * h], s[4 * j + 2 * h + 1]));
    }
  }
  ptx::fence_proxy_async_shared();
}

// O *= scale, per row; skipped when no row of the warp moved its max (scale 1, and x·1 = x, so
// the result is the same to the bit), which with the lazy max is nearly every block.
__device__ __forceinline__ void rescale(float (&o)[kOutRegs], const float (&scale)[2]) {
  if (__all_sync(0xffffffffu, scale[0] == 1.f && scale[1] == 1.f)) return;
#pragma unroll
  for (int i = 0; i < kOutRegs; ++i) o[i] *= scale[(i >> 1) & 1];
}

// The V operand of this warpgroup's 256 columns (sub-tiles 4·half .. 4·half + 3 of a block) at
// k-step 0: MN-major, 64-channel atoms 8 KiB apart, 8-token groups 1 KiB apart; k-step kk starts
// kVStepBytes further on.
constexpr uint32_t kVStepBytes = 16 * kRowBytes;
__device__ __forceinline__ uint64_t v_desc(uint32_t kv_tile, int half) {
  return wgmma::smem_desc_sw128(kv_tile + half * kVSubtilesPerHalf * kSubtileBytes, kSubtileBytes, kGroupBytes);
}

// O += P·V with P from registers; committed as one group.
template <typename T>
__device__ __forceinline__ void issue_pv(float (&o)[kOutRegs], const uint32_t (&a)[kKeySteps][4], uint32_t kv_tile,
                                         int half) {
  const uint64_t v = v_desc(kv_tile, half);
  wgmma::fence();
#pragma unroll
  for (int kk = 0; kk < kKeySteps; ++kk) Elem<T>::pv(o, a[kk], wgmma::desc_plus(v, kk * kVStepBytes));
  wgmma::commit_group();
}

// O += P·V with P from a swizzled shared-memory sub-tile; committed as one group.
template <typename T>
__device__ __forceinline__ void issue_pv(float (&o)[kOutRegs], uint32_t p_tile, uint32_t kv_tile, int half) {
  const uint64_t pd = wgmma::smem_desc_sw128(p_tile, 16, kGroupBytes);
  const uint64_t v = v_desc(kv_tile, half);
  wgmma::fence();
#pragma unroll
  for (int kk = 0; kk < kKeySteps; ++kk) {
    Elem<T>::pv(o, wgmma::desc_plus(pd, kk * 32), wgmma::desc_plus(v, kk * kVStepBytes));
  }
  wgmma::commit_group();
}

// Zeroes the V rows of this warpgroup's half of a block that lie outside [row_lo, row_hi): a
// sequence's last block holds other tokens past its end, whose values (NaN, say) would survive
// P = 0 in P·V. Whole 128-byte rows, so the swizzle does not matter. Then the warpgroup meets at
// `barrier` so that every thread's zeros precede its wgmma.
__device__ __forceinline__ void clear_rows_outside(uint32_t kv_tile, int half, int row_lo, int row_hi,
                                                   int thread_in_warpgroup, uint32_t barrier) {
  constexpr int kChunksPerRow = kVSubtilesPerHalf * kRowBytes / 16;  // 32 16-byte chunks
  const int below = max(min(row_lo, kPageBlockSize), 0);
  const int above = max(kPageBlockSize - max(row_hi, below), 0);
  const int total = (below + above) * kChunksPerRow;
  for (int i = thread_in_warpgroup; i < total; i += 128) {
    const int k = i / kChunksPerRow;
    const int row = k < below ? k : kPageBlockSize - above + (k - below);
    const int chunk = i % kChunksPerRow;
    const uint32_t addr = kv_tile + (half * kVSubtilesPerHalf + chunk / 8) * kSubtileBytes + row * kRowBytes +
                          (chunk % 8) * 16;
    asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(addr), "r"(0u) : "memory");
  }
  ptx::fence_proxy_async_shared();
  ptx::named_barrier_sync(barrier, 128);
}

}  // namespace flashmla::seesaw
