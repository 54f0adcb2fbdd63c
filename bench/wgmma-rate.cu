// The tensor cores' rate for the wgmma shapes of the seesaw decode kernel (docs/perf-notes.md,
// fourth session): 132 CTAs of two warpgroups, operands in shared memory (zeros), each warpgroup
// issuing one product's wgmmas per iteration and waiting for them. Prints FLOP per clock per SM
// against the dense bf16 peak of 4096. A development tool, not part of the package. On a GPU host:
//   nvcc -gencode=arch=compute_90a,code=sm_90a -O3 -std=c++17 -I csrc -o /tmp/wgmma-rate \
//     bench/wgmma-rate.cu && /tmp/wgmma-rate
#include <cstdio>
#include <cuda_bf16.h>
#include "seesaw_tile.cuh"  // the kernel's tile layout: sub-tile and swizzle-group sizes
using namespace flashmla;
using namespace flashmla::seesaw;

__device__ __forceinline__ void m64n128_ss(float (&d)[64], uint64_t a, uint64_t b) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, 1, 0;\n"
    "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
    "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
    "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63},"
    " %64, %65, p, 1, 1, 0, 0;\n}\n"
    : "+f"(d[0]),"+f"(d[1]),"+f"(d[2]),"+f"(d[3]),"+f"(d[4]),"+f"(d[5]),"+f"(d[6]),"+f"(d[7]),"+f"(d[8]),"+f"(d[9]),"+f"(d[10]),"+f"(d[11]),"+f"(d[12]),"+f"(d[13]),"+f"(d[14]),"+f"(d[15]),
      "+f"(d[16]),"+f"(d[17]),"+f"(d[18]),"+f"(d[19]),"+f"(d[20]),"+f"(d[21]),"+f"(d[22]),"+f"(d[23]),"+f"(d[24]),"+f"(d[25]),"+f"(d[26]),"+f"(d[27]),"+f"(d[28]),"+f"(d[29]),"+f"(d[30]),"+f"(d[31]),
      "+f"(d[32]),"+f"(d[33]),"+f"(d[34]),"+f"(d[35]),"+f"(d[36]),"+f"(d[37]),"+f"(d[38]),"+f"(d[39]),"+f"(d[40]),"+f"(d[41]),"+f"(d[42]),"+f"(d[43]),"+f"(d[44]),"+f"(d[45]),"+f"(d[46]),"+f"(d[47]),
      "+f"(d[48]),"+f"(d[49]),"+f"(d[50]),"+f"(d[51]),"+f"(d[52]),"+f"(d[53]),"+f"(d[54]),"+f"(d[55]),"+f"(d[56]),"+f"(d[57]),"+f"(d[58]),"+f"(d[59]),"+f"(d[60]),"+f"(d[61]),"+f"(d[62]),"+f"(d[63])
    : "l"(a), "l"(b));
}

// mode 0: S-like, 36 x m64n64k16 SS per iteration per WG
// mode 1: PV-like, 4 RS + 4 SS m64n256k16 per iteration per WG
// mode 2: S with N=128: 18 x m64n128k16 SS (same flops as mode 0)
// mode 3: PV RS only: 8 x m64n256k16 RS
// mode 4: PV SS only: 8 x m64n256k16 SS
// mode 5: S-like but only WG0 issues (WG1 idle), 72 per iteration
template <int kMode>
__global__ void __launch_bounds__(256, 1) bench(int iters, float* sink, long long* cyc) {
  extern __shared__ __align__(1024) uint8_t smem[];
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t q = (base + 1023) & ~1023u;
  const uint32_t k = q + kSubtilesK * kSubtileBytes;
  for (int i = threadIdx.x; i < 200 * 1024 / 16; i += blockDim.x)
    asm volatile("st.shared.v4.u32 [%0], {%1,%1,%1,%1};" ::"r"(base + 16 * i), "r"(0u));
  asm volatile("fence.proxy.async.shared::cta;");
  __syncthreads();
  const int wg = threadIdx.x / 128;  // mode 5 leaves warpgroup 1 idle
  long long t0 = clock64();
  float o[128] = {};
  float s[32] = {};
  float s2[64] = {};
  uint32_t a[4] = {0, 0, 0, 0};
  if (kMode == 5 && wg == 1) { iters = 0; }
  for (int it = 0; it < iters; ++it) {
    wgmma::fence();
    if constexpr (kMode == 0 || kMode == 5) {
#pragma unroll
      for (int r = 0; r < (kMode == 5 ? 2 : 1); ++r)
#pragma unroll
      for (int sub = 0; sub < kSubtilesK; ++sub)
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          const uint32_t off = sub * kSubtileBytes + kk * 32;
          wgmma::wgmma_m64n64k16_ss_bf16(s, wgmma::smem_desc_sw128(q + off, 16, kGroupBytes),
                                         wgmma::smem_desc_sw128(k + off, 16, kGroupBytes), 1);
        }
    } else if constexpr (kMode == 2) {
#pragma unroll
      for (int sub = 0; sub < kSubtilesK; ++sub)
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
          const uint32_t off = sub * kSubtileBytes + kk * 32;
          m64n128_ss(s2, wgmma::smem_desc_sw128(q + off, 16, kGroupBytes), wgmma::smem_desc_sw128(k + off, 16, kGroupBytes));
        }
    } else {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const uint64_t vd = wgmma::smem_desc_sw128(k + kk * kVStepBytes, kSubtileBytes, kGroupBytes);
        if (kMode == 1 || kMode == 3) wgmma::wgmma_m64n256k16_rs_bf16(o, a, vd, 1);
        else wgmma::wgmma_m64n256k16_ss_bf16(o, wgmma::smem_desc_sw128(q + kk * 32, 16, kGroupBytes), vd, 1);
      }
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const uint64_t vd = wgmma::smem_desc_sw128(k + kk * kVStepBytes, kSubtileBytes, kGroupBytes);
        if (kMode == 3) wgmma::wgmma_m64n256k16_rs_bf16(o, a, vd, 1);
        else wgmma::wgmma_m64n256k16_ss_bf16(o, wgmma::smem_desc_sw128(q + kk * 32, 16, kGroupBytes), vd, 1);
      }
    }
    wgmma::commit_group();
    wgmma::wait_group<0>();
  }
  long long t1 = clock64();
  float acc = 0;
  for (int i = 0; i < 128; ++i) acc += o[i];
  for (int i = 0; i < 32; ++i) acc += s[i];
  for (int i = 0; i < 64; ++i) acc += s2[i];
  if (acc == 12345.f) sink[threadIdx.x] = acc;
  if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
}

template <int kMode>
void run(const char* name, double flops_per_iter_per_wg, int wgs) {
  const int smem = 210 * 1024;
  cudaFuncSetAttribute(bench<kMode>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  float* sink; long long* cyc;
  cudaMalloc(&sink, 4096); cudaMalloc(&cyc, 132 * 8);
  const int iters = 2000;
  bench<kMode><<<132, 256, smem>>>(10, sink, cyc);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  cudaEventRecord(a);
  bench<kMode><<<132, 256, smem>>>(iters, sink, cyc);
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b);
  long long c[132]; cudaMemcpy(c, cyc, sizeof c, cudaMemcpyDeviceToHost);
  double flops = flops_per_iter_per_wg * wgs * iters * 132;
  double cycles = c[0];
  double per_sm_flops_per_clk = flops_per_iter_per_wg * wgs * iters / cycles;
  printf("%-28s %8.1f TFLOPS  %6.0f FLOP/clk/SM (peak 4096)  clock %.0f MHz  cycles/iter %.0f  err=%s\n", name,
         flops / (ms * 1e-3) / 1e12, per_sm_flops_per_clk, cycles / (ms * 1e3), cycles / iters,
         cudaGetErrorString(cudaGetLastError()));
}

int main() {
  const double s_flops = 2.0 * 64 * 64 * 576;       // one WG, one block's S
  const double pv_flops = 2.0 * 2 * 64 * 256 * 64;  // one WG, two P·V halves
  run<0>("S  m64n64k16 SS x36, 2 WG", s_flops, 2);
  run<5>("S  m64n64k16 SS x72, 1 WG", 2 * s_flops, 1);
  run<2>("S  m64n128k16 SS x18, 2 WG", s_flops, 2);
  run<1>("PV n256 4 RS + 4 SS, 2 WG", pv_flops, 2);
  run<3>("PV n256 8 RS, 2 WG", pv_flops, 2);
  run<4>("PV n256 8 SS, 2 WG", pv_flops, 2);
  return 0;
}
