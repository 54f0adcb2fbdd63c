// The plain GPU reference: the oracle for shapes too large for the CPU reference. Float32 math,
// float32 outputs, written to be obviously correct rather than fast.
//
// Grid: (batch * s_q * h_q) on grid.x, one CTA per query row; block: kReferenceThreads = 256.
// Dynamic shared memory: one float per attended key, kReferenceSmemBytesPerKey * (longest
// attended length) bytes, at most kReferenceMaxSmemBytes (128 KiB = 32768 keys) by convention;
// the launcher raises the attribute. A row that needs more keys than the launch provided
// (%dynamic_smem_size) gets NaN in out and lse instead of an overflow, so the test fails loudly.
//
// CTA (i, s, h): q row q[i, s, h], KV head h / group_size, L = clamp(len_i, 0, capacity), attended
// keys j < n with n = L (or clamp(L - s_q + s + 1, 0, L) when causal). Only those keys are read.
//   1. warps take keys j = warp, warp + 8, ...: score_j = softmax_scale * q·K_j (lane-partial dot
//      products over 18 channels each, then a butterfly sum) into shared memory;
//   2. block max, then p_j = exp(score_j - max) in place, then block sum;
//   3. thread t computes channels 2t, 2t + 1: out = sum_j p_j V_j / sum, lse = max + ln(sum).
// A row with n = 0: out 0, lse +inf. A block id outside [0, num_cache_blocks) reads as zeros.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "config.h"
#include "params.h"
#include "ptx.cuh"
#include "smem_sizes.h"

namespace flashmla::reference {

constexpr int kWarps = kReferenceThreads / 32;
static_assert(kHeadDimV == 2 * kReferenceThreads, "two output channels per thread");
static_assert(kHeadDimK % 64 == 0, "each lane takes channel pairs 2l + 64k");
static_assert(kReferenceMaxSmemBytes + kHeadDimK * 4 + 1024 <= kSm90MaxSmemPerBlock,
              "the scores of kReferenceMaxKeys keys fit beside the static shared memory");

__device__ __forceinline__ float2 to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
__device__ __forceinline__ float2 to_float2(__half2 v) { return __half22float2(v); }

template <typename T>
struct Pair;
template <>
struct Pair<__nv_bfloat16> {
  using Type = __nv_bfloat162;
};
template <>
struct Pair<__half> {
  using Type = __half2;
};

// Block-wide reductions over kReferenceThreads threads; every thread gets the result.
// `scratch` holds kWarps floats; the trailing __syncthreads lets the caller reuse it.
__device__ float block_max(float value, float* scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  float result = scratch[0];
  for (int w = 1; w < kWarps; ++w) result = fmaxf(result, scratch[w]);
  __syncthreads();
  return result;
}

__device__ float block_sum(float value, float* scratch) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  float result = scratch[0];
  for (int w = 1; w < kWarps; ++w) result += scratch[w];
  __syncthreads();
  return result;
}

// The cache row of token j of sequence `batch`, KV head `kv_head`; nullptr for an invalid block id.
template <typename T>
__device__ const T* cache_row(const ReferenceParams& p, int batch, int j, int kv_head) {
  const AttentionShape& sh = p.shape;
  const int32_t block_id = p.block_table[static_cast<int64_t>(batch) * sh.block_table_batch_stride + j / kPageBlockSize];
  if (block_id < 0 || block_id >= sh.num_cache_blocks) return nullptr;
  return static_cast<const T*>(p.k_cache) + static_cast<int64_t>(block_id) * sh.k_block_stride +
         static_cast<int64_t>(j % kPageBlockSize) * sh.k_token_stride + static_cast<int64_t>(kv_head) * sh.k_head_stride;
}

template <typename T>
__device__ void reference_row(const ReferenceParams& p) {
  using T2 = typename Pair<T>::Type;
  extern __shared__ float scores[];  // [attended keys]
  __shared__ float q_row[kHeadDimK];
  __shared__ float scratch[kWarps];

  const AttentionShape& sh = p.shape;
  const int64_t rows_per_batch = static_cast<int64_t>(sh.seqlen_q) * sh.num_heads_q;
  const int64_t index = blockIdx.x;
  const int batch = static_cast<int>(index / rows_per_batch);
  const int s = static_cast<int>((index % rows_per_batch) / sh.num_heads_q);
  const int head = static_cast<int>(index % sh.num_heads_q);
  if (batch >= sh.batch) return;
  const int kv_head = head / sh.group_size;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;

  const int64_t capacity = max(static_cast<int64_t>(sh.max_blocks_per_seq) * kPageBlockSize, int64_t{0});
  const int64_t len = min(max(static_cast<int64_t>(p.cache_seqlens[batch]), int64_t{0}), capacity);
  const int64_t attended =
      sh.causal ? min(max(len - sh.seqlen_q + s + 1, int64_t{0}), len) : len;
  const int n = static_cast<int>(attended);

  float* out = p.out + ((static_cast<int64_t>(batch) * sh.seqlen_q + s) * sh.num_heads_q + head) * kHeadDimV;
  float* lse = p.lse + (static_cast<int64_t>(batch) * sh.num_heads_q + head) * sh.seqlen_q + s;
  if (static_cast<int64_t>(n) * kReferenceSmemBytesPerKey > ptx::dynamic_smem_size()) {
    // More keys than the launch gave room for: fail loudly.
    out[2 * threadIdx.x] = NAN;
    out[2 * threadIdx.x + 1] = NAN;
    if (threadIdx.x == 0) *lse = NAN;
    return;
  }
  if (n == 0) {
    out[2 * threadIdx.x] = 0.f;
    out[2 * threadIdx.x + 1] = 0.f;
    if (threadIdx.x == 0) *lse = INFINITY;
    return;
  }

  const T* q = static_cast<const T*>(p.q) + static_cast<int64_t>(batch) * sh.q_batch_stride +
               static_cast<int64_t>(s) * sh.q_row_stride + static_cast<int64_t>(head) * sh.q_head_stride;
  for (int c = threadIdx.x; c < kHeadDimK; c += kReferenceThreads) {
    q_row[c] = static_cast<float>(q[c]);
  }
  __syncthreads();

  // 1. Scores.
  for (int j = warp; j < n; j += kWarps) {
    const T* k = cache_row<T>(p, batch, j, kv_head);
    float dot = 0.f;
    if (k != nullptr) {
      for (int c = 2 * lane; c < kHeadDimK; c += 64) {
        const float2 kv = to_float2(*reinterpret_cast<const T2*>(k + c));
        dot += q_row[c] * kv.x + q_row[c + 1] * kv.y;
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
    if (lane == 0) scores[j] = dot * sh.softmax_scale;
  }
  __syncthreads();

  // 2. Softmax weights.
  float local_max = -INFINITY;
  for (int j = threadIdx.x; j < n; j += kReferenceThreads) local_max = fmaxf(local_max, scores[j]);
  const float row_max = block_max(local_max, scratch);
  const float safe_max = row_max == -INFINITY ? 0.f : row_max;
  float local_sum = 0.f;
  for (int j = threadIdx.x; j < n; j += kReferenceThreads) {
    const float weight = expf(scores[j] - safe_max);
    scores[j] = weight;
    local_sum += weight;
  }
  const float row_sum = block_sum(local_sum, scratch);  // its barriers also publish the weights

  // 3. Output channels 2t, 2t + 1.
  const int c = 2 * static_cast<int>(threadIdx.x);
  float acc0 = 0.f;
  float acc1 = 0.f;
  for (int j = 0; j < n; ++j) {
    const T* v = cache_row<T>(p, batch, j, kv_head);
    if (v == nullptr) continue;
    const float2 value = to_float2(*reinterpret_cast<const T2*>(v + c));
    acc0 += scores[j] * value.x;
    acc1 += scores[j] * value.y;
  }
  out[c] = acc0 / row_sum;
  out[c + 1] = acc1 / row_sum;
  if (threadIdx.x == 0) *lse = safe_max + logf(row_sum);
}

}  // namespace flashmla::reference

extern "C" __global__ void __launch_bounds__(flashmla::kReferenceThreads)
    flashmla_reference_bf16(const __grid_constant__ ReferenceParams p) {
  flashmla::reference::reference_row<__nv_bfloat16>(p);
}

extern "C" __global__ void __launch_bounds__(flashmla::kReferenceThreads)
    flashmla_reference_fp16(const __grid_constant__ ReferenceParams p) {
  flashmla::reference::reference_row<__half>(p);
}
