// Utilities for the tests and the benchmark: a seeded normal fill, a plain 16-byte copy (the
// bandwidth ceiling) and a TMA probe (proves the TypeScript tensor-map encoding).
//
//   flashmla_fill_normal_bf16/fp16 (FillParams): grid-stride over count elements; any grid.x,
//     block kFillThreads. Element k = clamp(z_k * scale, ±clamp) rounded to nearest even, with
//     h = splitmix64(seed + (k + 1) * 0x9E3779B97F4A7C15), u1 = ((h >> 40) + 1) / 2^24,
//     u2 = ((h >> 8) & 0xFFFFFF) / 2^24, z_k = sqrt(-2 ln u1) * cos(2 pi u2) (Box-Muller).
//   flashmla_copy (CopyParams): grid-stride 16-byte copy; any grid.x, block kCopyThreads.
//   flashmla_tma_probe (TmaProbeParams): grid 1, block kTmaProbeThreads, static shared memory
//     only; thread 0 starts one cp.async.bulk.tensor.2d of the 64x64 bf16 box at (x, y) onto an
//     mbarrier, everyone waits on it, then the CTA copies the 8 KiB shared-memory image to dst.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "config.h"
#include "params.h"
#include "ptx.cuh"
#include "smem_sizes.h"

namespace flashmla::testing {

static_assert(sizeof(TmaProbeParams::tensor_map) == 128, "a CUtensorMap is 128 bytes");
static_assert(alignof(TmaProbeParams) >= 64, "a CUtensorMap must be 64-byte aligned");
static_assert(kTmaProbeBytes % (16 * kTmaProbeThreads) == 0, "whole 16-byte stores per thread");

// splitmix64's output function on a Weyl-sequence state: a good 64-bit hash of the counter.
__device__ __forceinline__ uint64_t splitmix64(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__device__ __forceinline__ float normal_at(uint64_t seed, uint64_t index) {
  const uint64_t h = splitmix64(seed, index);
  const float u1 = static_cast<float>((h >> 40) + 1) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = static_cast<float>((h >> 8) & 0xFFFFFFu) * (1.0f / 16777216.0f);  // [0, 1)
  return sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);
}

template <typename T>
__device__ __forceinline__ T round_to(float value);
template <>
__device__ __forceinline__ __nv_bfloat16 round_to(float value) {
  return __float2bfloat16_rn(value);
}
template <>
__device__ __forceinline__ __half round_to(float value) {
  return __float2half_rn(value);
}

template <typename T>
__device__ __forceinline__ void fill_normal(const FillParams& p) {
  T* dst = static_cast<T*>(p.dst);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < p.count; k += stride) {
    float value = normal_at(p.seed, static_cast<uint64_t>(k)) * p.scale;
    if (p.clamp > 0.f) value = fminf(fmaxf(value, -p.clamp), p.clamp);
    dst[k] = round_to<T>(value);
  }
}

}  // namespace flashmla::testing

extern "C" __global__ void __launch_bounds__(flashmla::kFillThreads)
    flashmla_fill_normal_bf16(const __grid_constant__ FillParams p) {
  flashmla::testing::fill_normal<__nv_bfloat16>(p);
}

extern "C" __global__ void __launch_bounds__(flashmla::kFillThreads)
    flashmla_fill_normal_fp16(const __grid_constant__ FillParams p) {
  flashmla::testing::fill_normal<__half>(p);
}

extern "C" __global__ void __launch_bounds__(flashmla::kCopyThreads)
    flashmla_copy(const __grid_constant__ CopyParams p) {
  const uint4* src = static_cast<const uint4*>(p.src);
  uint4* dst = static_cast<uint4*>(p.dst);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < p.count; k += stride) {
    dst[k] = src[k];
  }
}

extern "C" __global__ void __launch_bounds__(flashmla::kTmaProbeThreads)
    flashmla_tma_probe(const __grid_constant__ TmaProbeParams p) {
  using namespace flashmla;
  // 1024-byte alignment: what a 128-byte-swizzled box needs; harmless for the others.
  __shared__ alignas(1024) uint8_t tile[kTmaProbeBytes];
  __shared__ alignas(8) uint64_t barrier;
  const uint32_t bar = ptx::smem_addr(&barrier);
  if (threadIdx.x == 0) {
    ptx::mbarrier_init(bar, 1);
    ptx::fence_proxy_async_shared();  // the initialised barrier, visible to the TMA unit
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ptx::mbarrier_arrive_expect_tx(bar, kTmaProbeBytes);
    ptx::tma_load_2d(ptx::smem_addr(tile), p.tensor_map, bar, p.x, p.y);
  }
  while (!ptx::mbarrier_try_wait_parity(bar, 0)) {
  }
  const uint4* src = reinterpret_cast<const uint4*>(tile);
  uint4* dst = static_cast<uint4*>(p.dst);
  for (int k = threadIdx.x; k < kTmaProbeBytes / 16; k += kTmaProbeThreads) dst[k] = src[k];
}
