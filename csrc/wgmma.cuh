// Warpgroup matrix products (wgmma, sm_90a) and their shared-memory descriptors: the tensor-core
// path of the seesaw decode kernel. Each wrapper is one PTX instruction (PTX ISA 9.0,
// "Asynchronous Warpgroup Level Matrix Multiply-Accumulate Instructions"); the operand lists of
// the 32- and 128-accumulator forms are written out because inline asm takes no arrays.
//
// Accumulator fragment of m64nNk16 (f32), warp w of the warpgroup, gid = lane / 4, tig = lane % 4:
//   d[4j + 0], d[4j + 1] = row 16w + gid,     columns 8j + 2tig, 8j + 2tig + 1
//   d[4j + 2], d[4j + 3] = row 16w + gid + 8, the same columns
// A fragment from registers (16-bit, m64 x k16): a[0] = row 16w + gid, k 2tig..+1; a[1] = row
// +8; a[2] = row 16w + gid, k 2tig + 8..+9; a[3] = row +8. So the accumulator of a 64 x 64 product
// becomes the A operand of the next product by packing pairs: k-step kk takes chunks 2kk, 2kk + 1.
#pragma once
#include <stdint.h>

namespace flashmla::wgmma {

// PTX ISA "Matrix Descriptor Format": a 64-bit shared-memory matrix descriptor with 128-byte
// swizzle. Address, leading and stride byte offsets are encoded in 16-byte units.
//   K-major operand (rows of 64 16-bit elements, the reduction dimension contiguous): the
//   stride offset is the distance between 8-row groups (1024 bytes for 128-byte rows); the
//   leading offset is unused with this swizzle (1 by convention).
//   MN-major operand (V: [token][channel], the output dimension contiguous): the stride offset
//   is the distance between 8-token groups (1024), the leading offset the distance between
//   64-channel swizzle atoms along N (one 64 x 64 sub-tile: 8192).
// Advancing along K inside a 128-byte row moves the start address by 32 bytes per k16 step; the
// hardware applies the swizzle to the final address, so every sub-tile must be 1024-byte aligned.
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t smem_addr, uint32_t leading_bytes,
                                                     uint32_t stride_bytes) {
  uint64_t desc = (smem_addr & 0x3FFFFu) >> 4;
  desc |= static_cast<uint64_t>((leading_bytes >> 4) & 0x3FFFu) << 16;
  desc |= static_cast<uint64_t>((stride_bytes >> 4) & 0x3FFFu) << 32;
  desc |= 1ull << 62;  // swizzle mode 1: 128-byte
  return desc;
}

// The descriptor of the operand `bytes` further on in shared memory (a multiple of 16): the start
// address field holds address bits 4..17, so adding to it is exact while the address stays below
// 256 KiB, which every shared-memory address does. One add per wgmma instead of rebuilding it.
__device__ __forceinline__ uint64_t desc_plus(uint64_t desc, uint32_t bytes) { return desc + (bytes >> 4); }

// PTX ISA "wgmma.fence": order earlier register writes (accumulators, A fragments) before the
// warpgroup's next wgmma.mma_async reads them.
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }

// PTX ISA "wgmma.commit_group": close the group of wgmma.mma_async issued since the last commit.
__device__ __forceinline__ void commit_group() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

// PTX ISA "wgmma.wait_group": wait until at most N committed groups are pending. The registers of
// a pending group (accumulators, A fragments) must not be touched before it completes.
template <int N>
__device__ __forceinline__ void wait_group() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Register operands that a pending wgmma reads or writes: an empty asm that claims to change
// them keeps the compiler from moving their uses across a wait_group.
template <int N>
__device__ __forceinline__ void fence_registers(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// The products, one macro per shape, defined below for bf16 and fp16 (they differ only in the
// PTX type of A and B). `accumulate` = 0 overwrites d (D = A·B), otherwise D += A·B.
//   m64n64k16 ss:  S[64 x 64] (+)= Q[64 x 16] · K[64 tokens x 16]ᵀ, both K-major descriptors.
//   m64n256k16 rs: O[64 x 256] (+)= P[64 x 16] (registers) · V[16 tokens x 256], V MN-major.
//   m64n256k16 ss: the same with P from a K-major shared-memory descriptor.
// The `_overwrite` form is the first k-step of a product: D = A·B with D an output only, so that no
// earlier value of the registers flows into the chain (ptxas serialises wgmma when other
// instructions define an accumulator that a pending chain still reads).

// Inline asm takes no arrays: the accumulator lists, in the asm string and as operands.
#define FLASHMLA_WGMMA_REGS32 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21,\n" \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}\n"
#define FLASHMLA_WGMMA_REGS128 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21,\n" \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41,\n" \
  "%42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61,\n" \
  "%62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81,\n" \
  "%82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101,\n" \
  "%102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118,\n" \
  "%119, %120, %121, %122, %123, %124, %125, %126, %127}\n"
// C: the constraint, "+f" (read and written) or "=f" (written only).
#define FLASHMLA_WGMMA_D32(C, d) \
  C(d[0]), C(d[1]), C(d[2]), C(d[3]), C(d[4]), C(d[5]), C(d[6]), C(d[7]), \
  C(d[8]), C(d[9]), C(d[10]), C(d[11]), C(d[12]), C(d[13]), C(d[14]), C(d[15]), \
  C(d[16]), C(d[17]), C(d[18]), C(d[19]), C(d[20]), C(d[21]), C(d[22]), C(d[23]), \
  C(d[24]), C(d[25]), C(d[26]), C(d[27]), C(d[28]), C(d[29]), C(d[30]), C(d[31])
#define FLASHMLA_WGMMA_D128(C, d) \
  C(d[0]), C(d[1]), C(d[2]), C(d[3]), C(d[4]), C(d[5]), C(d[6]), C(d[7]), \
  C(d[8]), C(d[9]), C(d[10]), C(d[11]), C(d[12]), C(d[13]), C(d[14]), C(d[15]), \
  C(d[16]), C(d[17]), C(d[18]), C(d[19]), C(d[20]), C(d[21]), C(d[22]), C(d[23]), \
  C(d[24]), C(d[25]), C(d[26]), C(d[27]), C(d[28]), C(d[29]), C(d[30]), C(d[31]), \
  C(d[32]), C(d[33]), C(d[34]), C(d[35]), C(d[36]), C(d[37]), C(d[38]), C(d[39]), \
  C(d[40]), C(d[41]), C(d[42]), C(d[43]), C(d[44]), C(d[45]), C(d[46]), C(d[47]), \
  C(d[48]), C(d[49]), C(d[50]), C(d[51]), C(d[52]), C(d[53]), C(d[54]), C(d[55]), \
  C(d[56]), C(d[57]), C(d[58]), C(d[59]), C(d[60]), C(d[61]), C(d[62]), C(d[63]), \
  C(d[64]), C(d[65]), C(d[66]), C(d[67]), C(d[68]), C(d[69]), C(d[70]), C(d[71]), \
  C(d[72]), C(d[73]), C(d[74]), C(d[75]), C(d[76]), C(d[77]), C(d[78]), C(d[79]), \
  C(d[80]), C(d[81]), C(d[82]), C(d[83]), C(d[84]), C(d[85]), C(d[86]), C(d[87]), \
  C(d[88]), C(d[89]), C(d[90]), C(d[91]), C(d[92]), C(d[93]), C(d[94]), C(d[95]), \
  C(d[96]), C(d[97]), C(d[98]), C(d[99]), C(d[100]), C(d[101]), C(d[102]), C(d[103]), \
  C(d[104]), C(d[105]), C(d[106]), C(d[107]), C(d[108]), C(d[109]), C(d[110]), C(d[111]), \
  C(d[112]), C(d[113]), C(d[114]), C(d[115]), C(d[116]), C(d[117]), C(d[118]), C(d[119]), \
  C(d[120]), C(d[121]), C(d[122]), C(d[123]), C(d[124]), C(d[125]), C(d[126]), C(d[127])

// NAME: the dtype suffix of the wrappers; AB: the PTX types of A and B ("bf16.bf16", "f16.f16").
#define FLASHMLA_DEFINE_WGMMA(NAME, AB) \
  __device__ __forceinline__ void wgmma_m64n64k16_ss_##NAME(float(&d)[32], uint64_t desc_a, uint64_t desc_b, \
                                                            uint32_t accumulate) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, %34, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32." AB "\n" FLASHMLA_WGMMA_REGS32 \
                 ", %32, %33, p, 1, 1, 0, 0;\n}\n" \
                 : FLASHMLA_WGMMA_D32("+f", d) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate)); \
  } \
 \
  __device__ __forceinline__ void wgmma_m64n64k16_ss_##NAME##_overwrite(float(&d)[32], uint64_t desc_a, \
                                                                        uint64_t desc_b) { \
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32." AB "\n" FLASHMLA_WGMMA_REGS32 \
                 ", %32, %33, 0, 1, 1, 0, 0;\n" \
                 : FLASHMLA_WGMMA_D32("=f", d) \
                 : "l"(desc_a), "l"(desc_b)); \
  } \
 \
  __device__ __forceinline__ void wgmma_m64n256k16_rs_##NAME(float(&d)[128], const uint32_t(&a)[4], \
                                                             uint64_t desc_b, uint32_t accumulate) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, %133, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32." AB "\n" FLASHMLA_WGMMA_REGS128 \
                 ", {%128, %129, %130, %131}, %132, p, 1, 1, 1;\n}\n" \
                 : FLASHMLA_WGMMA_D128("+f", d) \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate)); \
  } \
 \
  __device__ __forceinline__ void wgmma_m64n256k16_ss_##NAME(float(&d)[128], uint64_t desc_a, uint64_t desc_b, \
                                                             uint32_t accumulate) { \
    asm volatile("{\n.reg .pred p;\nsetp.ne.u32 p, %130, 0;\n" \
                 "wgmma.mma_async.sync.aligned.m64n256k16.f32." AB "\n" FLASHMLA_WGMMA_REGS128 \
                 ", %128, %129, p, 1, 1, 0, 1;\n}\n" \
                 : FLASHMLA_WGMMA_D128("+f", d) \
                 : "l"(desc_a), "l"(desc_b), "r"(accumulate)); \
  }

FLASHMLA_DEFINE_WGMMA(bf16, "bf16.bf16")
FLASHMLA_DEFINE_WGMMA(fp16, "f16.f16")

#undef FLASHMLA_DEFINE_WGMMA
#undef FLASHMLA_WGMMA_REGS32
#undef FLASHMLA_WGMMA_REGS128
#undef FLASHMLA_WGMMA_D32
#undef FLASHMLA_WGMMA_D128

}  // namespace flashmla::wgmma
