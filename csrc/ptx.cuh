// Thin wrappers, one per PTX instruction the kernels use, so that the kernel bodies read like the
// algorithm. Each cites the section of the PTX ISA (version 9.0, shipped with CUDA 13.0) that
// defines it. Shared-memory operands are 32-bit shared-window addresses (see smem_addr).
#pragma once
#include <stdint.h>

namespace flashmla::ptx {

// The 32-bit shared-state-space address of a generic pointer into shared memory
// (PTX ISA: "Generic Addressing", cvta.to.shared).
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---------------------------------------------------------------------------------------------
// cp.async (non-bulk): 16-byte global -> shared copies tracked in commit groups.

// PTX ISA "cp.async": copy 16 bytes, or write 16 zero bytes and read nothing when !valid
// (src-size 0). src must still be a well-formed global address; callers pass a tensor base then.
__device__ __forceinline__ void cp_async_16_zfill(uint32_t dst, const void* src, bool valid) {
  const uint32_t src_size = valid ? 16u : 0u;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(__cvta_generic_to_global(src)),
               "r"(src_size)
               : "memory");
}

// PTX ISA "cp.async.commit_group": close the group of cp.async issued since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// PTX ISA "cp.async.wait_group": wait until at most N of this thread's groups are in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// PTX ISA "st.shared": store 32 bits at a shared-window address.
__device__ __forceinline__ void st_shared_u32(uint32_t addr, uint32_t value) {
  asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(addr), "r"(value) : "memory");
}

// ---------------------------------------------------------------------------------------------
// cp.async.bulk (non-tensor): shared -> global copies tracked in bulk groups.

// PTX ISA "cp.async.bulk": copy `bytes` (a multiple of 16; both addresses 16-byte aligned) from
// this CTA's shared memory to global memory, completing in the current bulk group.
__device__ __forceinline__ void bulk_store(void* dst, uint32_t src, uint32_t bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(__cvta_generic_to_global(dst)),
               "r"(src), "r"(bytes)
               : "memory");
}

// PTX ISA "cp.async.bulk.commit_group": close the bulk group of copies issued since the last one.
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }

// PTX ISA "cp.async.bulk.wait_group.read": wait until at most N of this thread's bulk groups are
// still reading their shared-memory source (the source may then be written again).
template <int N>
__device__ __forceinline__ void bulk_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}

// ---------------------------------------------------------------------------------------------
// Barriers.

// PTX ISA "bar.sync": named barrier `id` (1..15; 0 is __syncthreads) for `count` threads, a
// multiple of 32. bar.sync is barrier.sync.aligned: every participating thread must execute this
// same instruction (one call site for all of them).
__device__ __forceinline__ void named_barrier_sync(uint32_t id, uint32_t count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

// PTX ISA "barrier.sync" without .aligned: the same wait, for barriers that different groups of
// threads reach at different call sites (a hand-off between warpgroups).
__device__ __forceinline__ void named_barrier_sync_unaligned(uint32_t id, uint32_t count) {
  asm volatile("barrier.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

// ---------------------------------------------------------------------------------------------
// Register reallocation between warpgroups (sm_90a).

// PTX ISA "setmaxnreg": raise (inc) or lower (dec) this warpgroup's per-thread register count.
// Every warp of the warpgroup executes the same one.
template <int kRegisters>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

// ---------------------------------------------------------------------------------------------
// Programmatic dependent launch.

// PTX ISA "griddepcontrol": wait until the grids this one depends on have completed and their
// memory is visible (a no-op when the launch was not programmatic).
__device__ __forceinline__ void griddep_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }

// PTX ISA "griddepcontrol": allow the dependent grid to be scheduled once every CTA of this
// grid has issued this or exited.
__device__ __forceinline__ void griddep_launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// ---------------------------------------------------------------------------------------------
// Tensor memory access (TMA) and mbarriers.

// PTX ISA "Parallel Synchronization and Communication Instructions: membar/fence", proxy form:
// order this thread's generic-proxy shared-memory accesses with later async-proxy ones
// (mbarrier init before a TMA that completes on it).
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// PTX ISA "mbarrier.init": an mbarrier in shared memory expecting `count` arrivals per phase.
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// PTX ISA "mbarrier.expect_tx / mbarrier.arrive" (arrive.expect_tx): arrive once and add `bytes`
// to the transaction count the current phase waits for.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// PTX ISA "mbarrier.test_wait / mbarrier.try_wait" (try_wait.parity): true once the phase with
// the given parity has completed; may suspend for a system-dependent time before returning false.
__device__ __forceinline__ bool mbarrier_try_wait_parity(uint32_t bar, uint32_t parity) {
  uint32_t done;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}

// Waits until the phase with the given parity has completed (try_wait suspends in hardware
// between polls). The loop lives inside one asm statement so that, to the compiler, the warp
// stays converged: warpgroup instructions (wgmma) may follow directly.
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "wait_again:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_again;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

// PTX ISA "mbarrier.arrive": one arrival on the current phase.
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// One arrival from the threads with `arrive` set, as a predicated instruction rather than a
// branch, for arrivals made while a wgmma is in flight: on a divergent path between a wgmma and
// its wait_group ptxas may insert a warpgroup wait and serialise the kernel's wgmmas (C7518).
__device__ __forceinline__ void mbarrier_arrive_if(uint32_t bar, bool arrive) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.u32 p, %1, 0;\n"
      "@p mbarrier.arrive.shared::cta.b64 _, [%0];\n"
      "}\n" ::"r"(bar),
      "r"(static_cast<uint32_t>(arrive))
      : "memory");
}

// PTX ISA "createpolicy": an L2 cache policy that evicts these lines first (data read once).
__device__ __forceinline__ uint64_t l2_evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  return policy;
}

// PTX ISA "prefetch.tensormap": brings a tensor map (the generic address of a __grid_constant__
// parameter) into the TMA unit's cache, so the first load does not wait for it.
__device__ __forceinline__ void prefetch_tensormap(const void* tensor_map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(tensor_map)) : "memory");
}

// PTX ISA "cp.async.bulk.tensor": one TMA box of a 4-D tensor at element coordinates c0 (the
// contiguous dimension) .. c3 into shared memory, completing its bytes of transactions on the
// mbarrier, with an L2 cache policy. Elements outside the tensor are filled with zeros and never
// read; the box still completes its full byte count.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const void* tensor_map, uint32_t bar, int32_t c0,
                                           int32_t c1, int32_t c2, int32_t c3, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
      " [%0], [%1, {%2, %3, %4, %5}], [%6], %7;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar), "l"(policy)
      : "memory");
}

// PTX ISA "cp.async.bulk.tensor": one TMA box of a 2-D tensor at element coordinates (x inner,
// y outer) into shared memory, completing `bytes` of transactions on the mbarrier.
// tensor_map is the generic address of a CUtensorMap in a __grid_constant__ parameter.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* tensor_map, uint32_t bar, int32_t x,
                                           int32_t y) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
          "r"(dst),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}

// ---------------------------------------------------------------------------------------------
// Special registers.

// PTX ISA "Special Registers: %dynamic_smem_size": bytes of dynamic shared memory this launch got.
__device__ __forceinline__ uint32_t dynamic_smem_size() {
  uint32_t bytes;
  asm volatile("mov.u32 %0, %%dynamic_smem_size;\n" : "=r"(bytes));
  return bytes;
}

}  // namespace flashmla::ptx
