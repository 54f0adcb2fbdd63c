// The combine kernel: merges the float32 partials of the sequences that the schedule cut into
// several splits. Launched after the decode kernel with programmatic dependent launch; the decode
// kernel lets it be scheduled at its last pieces' stores, and its CTAs of unsplit sequences leave
// without waiting for the decode kernel to complete (see combine_row).
//
// Grid: (batch * slices, h_kv, ceil(rows_per_kv_head / kCombineRowsPerBlock)), slices = 1 or
// kCombineChannelSlices (the launcher's choice, read back as gridDim.x / batch); block:
// kCombineThreads = 128 threads (4 warps); no dynamic shared memory. The batch is on grid.x,
// which has no 65535 limit; grid.z limits rows_per_kv_head (= s_q * h_q / h_kv) to 4 * 65535.
//
// Warp w of CTA (x, h, z) merges query row m = 4z + w of KV head h of sequence i = x / slices,
// channels [c W, c W + W) with c = x % slices and W = 512 / slices, if sequence i has more than
// one split (the decode kernel wrote the others). A large grid takes whole rows (slices = 1);
// a small one, where few rows would leave most SMs idle, slices them over four times as many
// CTAs. With n splits at split rows r = num_splits[i] .. + n - 1, lane l:
//   1. reduces max and sum of exp(lse_r - max) over splits l, l + 32, ... and the warp (butterfly
//      shuffles, so every lane ends with the same bits): lse = max + ln(sum);
//   2. for every split r in order: out += exp(lse_r - lse) * o_accum[r][h][m][c] for its W / 32
//      channels c = c W + 4(l + 32v) + {0..3} (16-byte loads, coalesced across the warp); the
//      loads of several splits are issued before any is used, so a long row of splits costs a
//      few memory latencies, not one per split;
//   3. writes out (rounded to q's dtype) at out[i, s, h * group_size + g] with m = s * group_size + g,
//      and (slice 0 only) lse at lse[i, h * group_size + g, s].
// The arithmetic, and so every bit of the result, is the same for both slicings.
// A row whose partial lse are all -inf attended no key: out 0, lse +inf. Emptiness is "sum == 0",
// not "max == -inf", so a NaN partial lse (NaN in q) propagates instead of reading as empty.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "config.h"
#include "pack.cuh"
#include "params.h"
#include "ptx.cuh"
#include "smem_sizes.h"

namespace flashmla::combine {

// 16-byte loads in flight per lane: kVectors per split (4 for whole rows, 1 for a slice).
constexpr int kVectorsInFlight = 8;
static_assert(kHeadDimV == kCombineChannelSlices * 32 * 4, "a slice is one float4 per lane");
static_assert(kCombineThreads == 32 * kCombineRowsPerBlock, "one warp per row");

// kVectors: float4 per lane per split: 4 for whole rows (slices = 1), 1 for slices of 128.
template <typename T, int kVectors>
__device__ __forceinline__ void combine_row(const CombineParams& p) {
  constexpr int kSlices = 4 / kVectors;
  constexpr int kSplitsInFlight = kVectorsInFlight / kVectors;
  const AttentionShape& sh = p.shape;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int batch = static_cast<int>(blockIdx.x) / kSlices;
  const int slice = static_cast<int>(blockIdx.x) % kSlices;
  const int kv_head = static_cast<int>(blockIdx.y);
  const int m = static_cast<int>(blockIdx.z) * kCombineRowsPerBlock + static_cast<int>(threadIdx.x) / 32;
  if (batch >= sh.batch || kv_head >= sh.num_heads_kv || m >= sh.rows_per_kv_head) return;

  // num_splits comes from the schedule kernel, which completed before the decode kernel began,
  // so it is read before waiting for the decode kernel: a row without splits (final in the
  // decode kernel's output already) is done at once, while the decode kernel still runs. One
  // CTA always waits, so that this grid never completes before the decode kernel does.
  const int split_first = p.num_splits[batch];
  const int num_splits = p.num_splits[batch + 1] - split_first;
  const bool anchor = blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0;
  if (num_splits <= 1 && !anchor) return;
  ptx::griddep_wait();  // the decode kernel's partials
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

  const int channel = slice * (kHeadDimV / kSlices) + 4 * lane;  // of the lane's first float4
  float4 acc[kVectors];
#pragma unroll
  for (int v = 0; v < kVectors; ++v) acc[v] = make_float4(0.f, 0.f, 0.f, 0.f);
  if (!empty) {
    for (int k0 = 0; k0 < num_splits; k0 += kSplitsInFlight) {
      float partial_lse[kSplitsInFlight];
      float4 partial[kSplitsInFlight][kVectors];
#pragma unroll
      for (int j = 0; j < kSplitsInFlight; ++j) {
        if (k0 + j < num_splits) {
          const int64_t row = first_row + (k0 + j) * split_stride;
          partial_lse[j] = p.lse_accum[row];
          const float4* o = reinterpret_cast<const float4*>(p.o_accum + row * kHeadDimV + channel);
#pragma unroll
          for (int v = 0; v < kVectors; ++v) partial[j][v] = o[32 * v];
        }
      }
#pragma unroll
      for (int j = 0; j < kSplitsInFlight; ++j) {
        if (k0 + j < num_splits) {
          const float weight = expf(partial_lse[j] - lse);
#pragma unroll
          for (int v = 0; v < kVectors; ++v) {
            acc[v].x += weight * partial[j][v].x;
            acc[v].y += weight * partial[j][v].y;
            acc[v].z += weight * partial[j][v].z;
            acc[v].w += weight * partial[j][v].w;
          }
        }
      }
    }
  }

  const int s = m / sh.group_size;
  const int q_head = kv_head * sh.group_size + (m - s * sh.group_size);
  T* out = static_cast<T*>(p.out) + static_cast<int64_t>(batch) * sh.out_batch_stride +
           static_cast<int64_t>(s) * sh.out_row_stride + static_cast<int64_t>(q_head) * sh.out_head_stride;
#pragma unroll
  for (int v = 0; v < kVectors; ++v) {
    uint2 packed;
    packed.x = pack2<T>(acc[v].x, acc[v].y);
    packed.y = pack2<T>(acc[v].z, acc[v].w);
    *reinterpret_cast<uint2*>(out + channel + 128 * v) = packed;
  }
  if (slice == 0 && lane == 0) {
    p.lse[(static_cast<int64_t>(batch) * sh.num_heads_q + q_head) * sh.seqlen_q + s] = empty ? INFINITY : lse;
  }
}

template <typename T>
__device__ __forceinline__ void combine(const CombineParams& p) {
  if (static_cast<int>(gridDim.x) == p.shape.batch) {
    combine_row<T, 4>(p);
  } else {
    combine_row<T, 1>(p);
  }
}

}  // namespace flashmla::combine

// At least 6 CTAs per SM (80 registers): enough warps to keep a large batch's merge streaming.
extern "C" __global__ void __launch_bounds__(flashmla::kCombineThreads, 6)
    flashmla_combine_bf16(const __grid_constant__ CombineParams p) {
  flashmla::combine::combine<__nv_bfloat16>(p);
}

extern "C" __global__ void __launch_bounds__(flashmla::kCombineThreads, 6)
    flashmla_combine_fp16(const __grid_constant__ CombineParams p) {
  flashmla::combine::combine<__half>(p);
}
