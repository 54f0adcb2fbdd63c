// The combine kernel: merges the float32 partials of the sequences that the schedule cut into
// several splits. Launched after the decode kernel with programmatic dependent launch.
//
// Grid: (batch, h_kv, ceil(rows_per_kv_head / kCombineRowsPerBlock)); block: kCombineThreads = 128
// threads (4 warps); no dynamic shared memory. The batch is on grid.x, which has no 65535 limit;
// grid.z limits rows_per_kv_head (= s_q * h_q / h_kv) to 4 * 65535.
//
// Warp w of CTA (i, h, z) merges query row m = 4z + w of KV head h of sequence i, if sequence i
// has more than one split (the decode kernel wrote the others). With n splits at split rows
// r = num_splits[i] .. num_splits[i] + n - 1, lane l:
//   1. reduces max and sum of exp(lse_r - max) over splits l, l + 32, ... and the warp (butterfly
//      shuffles, so every lane ends with the same bits): lse = max + ln(sum);
//   2. for every split r: out += exp(lse_r - lse) * o_accum[r][h][m][c] for its 16 channels
//      c = 4(l + 32k) + {0..3}, k = 0..3 (four 16-byte loads per split, coalesced across the warp);
//   3. writes out (rounded to q's dtype) at out[i, s, h * group_size + g] with m = s * group_size + g,
//      and lse at lse[i, h * group_size + g, s].
// A row whose partial lse are all -inf attended no key: out 0, lse +inf. Emptiness is "sum == 0",
// not "max == -inf", so a NaN partial lse (NaN in q) propagates instead of reading as empty.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "config.h"
#include "params.h"
#include "ptx.cuh"
#include "smem_sizes.h"

namespace flashmla::combine {

constexpr int kChannelsPerLane = kHeadDimV / 32;         // 16
constexpr int kVectorsPerLane = kChannelsPerLane / 4;    // four float4 per lane
static_assert(kHeadDimV % 128 == 0, "whole float4 per lane");
static_assert(kCombineThreads == 32 * kCombineRowsPerBlock, "one warp per row");

__device__ __forceinline__ uint32_t pack2(float lo, float hi, __nv_bfloat16*) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi, __half*) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <typename T>
__device__ __forceinline__ void combine_row(const CombineParams& p) {
  const AttentionShape& sh = p.shape;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int batch = static_cast<int>(blockIdx.x);
  const int kv_head = static_cast<int>(blockIdx.y);
  const int m = static_cast<int>(blockIdx.z) * kCombineRowsPerBlock + static_cast<int>(threadIdx.x) / 32;
  if (batch >= sh.batch || kv_head >= sh.num_heads_kv || m >= sh.rows_per_kv_head) return;

  const int split_first = p.num_splits[batch];
  const int num_splits = p.num_splits[batch + 1] - split_first;
  if (num_splits <= 1) return;

  // Partial row of split k: first_row + k * split_stride (rows of [split][h_kv][rows_per_kv_head]).
  const int64_t split_stride = static_cast<int64_t>(sh.num_heads_kv) * sh.rows_per_kv_head;
  const int64_t first_row = static_cast<int64_t>(split_first) * split_stride +
                            static_cast<int64_t>(kv_head) * sh.rows_per_kv_head + m;

  float max_lse = -INFINITY;
  for (int k = lane; k < num_splits; k += 32) max_lse = fmaxf(max_lse, p.lse_accum[first_row + k * split_stride]);
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    max_lse = fmaxf(max_lse, __shfl_xor_sync(0xffffffffu, max_lse, offset));
  }
  const float safe_max = max_lse == -INFINITY ? 0.f : max_lse;
  float sum = 0.f;
  for (int k = lane; k < num_splits; k += 32) sum += expf(p.lse_accum[first_row + k * split_stride] - safe_max);
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  const bool empty = sum == 0.f;  // every split had -inf: no attended key
  const float lse = safe_max + logf(sum);

  float acc[kChannelsPerLane];
#pragma unroll
  for (int c = 0; c < kChannelsPerLane; ++c) acc[c] = 0.f;
  if (!empty) {
    for (int k = 0; k < num_splits; ++k) {
      const int64_t row = first_row + k * split_stride;
      const float weight = expf(p.lse_accum[row] - lse);
      const float4* partial = reinterpret_cast<const float4*>(p.o_accum + row * kHeadDimV);
#pragma unroll
      for (int v = 0; v < kVectorsPerLane; ++v) {
        const float4 o = partial[lane + 32 * v];
        acc[4 * v + 0] += weight * o.x;
        acc[4 * v + 1] += weight * o.y;
        acc[4 * v + 2] += weight * o.z;
        acc[4 * v + 3] += weight * o.w;
      }
    }
  }

  const int s = m / sh.group_size;
  const int q_head = kv_head * sh.group_size + (m - s * sh.group_size);
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(batch) * sh.out_batch_stride +
           static_cast<int64_t>(s) * sh.out_row_stride + static_cast<int64_t>(q_head) * sh.out_head_stride;
#pragma unroll
  for (int v = 0; v < kVectorsPerLane; ++v) {
    uint2 packed;
    packed.x = pack2(acc[4 * v + 0], acc[4 * v + 1], static_cast<T*>(nullptr));
    packed.y = pack2(acc[4 * v + 2], acc[4 * v + 3], static_cast<T*>(nullptr));
    *reinterpret_cast<uint2*>(out + 4 * (lane + 32 * v)) = packed;
  }
  if (lane == 0) {
    p.lse[(static_cast<int64_t>(batch) * sh.num_heads_q + q_head) * sh.seqlen_q + s] = empty ? INFINITY : lse;
  }
}

}  // namespace flashmla::combine

extern "C" __global__ void __launch_bounds__(flashmla::kCombineThreads)
    flashmla_combine_bf16(const __grid_constant__ CombineParams p) {
  flashmla::ptx::griddep_wait();
  flashmla::combine::combine_row<__nv_bfloat16>(p);
}

extern "C" __global__ void __launch_bounds__(flashmla::kCombineThreads)
    flashmla_combine_fp16(const __grid_constant__ CombineParams p) {
  flashmla::ptx::griddep_wait();
  flashmla::combine::combine_row<__half>(p);
}
