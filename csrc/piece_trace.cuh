// A timeline of each decode CTA's pieces, for performance work only. Built with
// -DFLASHMLA_TRACE=N (scripts/trace-pieces.mjs builds it so), the decode kernel records the SM
// clock at each stage of each piece in the N-th launch of its module, and the start and end of
// every CTA in SM clocks and in global-timer nanoseconds (their ratio is the clock the kernel ran
// at); scripts/trace-pieces.mjs reads the arrays back by name and sums them up. In the library's
// build every call here is empty and the decode kernels' machine code is the same as without them
// (scripts/same-machine-code.mjs).
#pragma once
#include <stdint.h>

namespace flashmla::trace {

// The stages of a piece, in the order each math warpgroup passes them.
enum Event : int {
  kPieceStart,     // top of the piece: its Q is still to load
  kQReady,         // both warpgroups past the piece's Q barrier
  kFirstPairDone,  // the first pair of blocks done
  kPairsDone,      // every pair done: the piece's output is in registers
  kRowSumsReady,   // both warpgroups' row sums exchanged
  kLseDone,        // normalisers and lse written
  kStaged,         // the output rows staged in shared memory (final tiles of > 32 rows only)
  kPieceDone,      // out or the partial stored
  kEvents
};
constexpr int kMaxCtas = 1024;
constexpr int kMaxPieces = 16;

}  // namespace flashmla::trace

#ifdef FLASHMLA_TRACE
// C names, so that the host finds them with cuModuleGetGlobal.
extern "C" {
__device__ unsigned long long flashmla_trace_launched_ctas;  // CTAs started so far, all launches
// [CTA][warpgroup][piece][event]: clock64, 0 where not reached.
__device__ long long flashmla_trace_events[flashmla::trace::kMaxCtas][2][flashmla::trace::kMaxPieces]
                                          [flashmla::trace::kEvents];
// [CTA][piece]: batch << 32 | num_blocks << 1 | is_final.
__device__ long long flashmla_trace_pieces[flashmla::trace::kMaxCtas][flashmla::trace::kMaxPieces];
// [CTA]: start clock64, start globaltimer (ns), end clock64, end globaltimer.
__device__ long long flashmla_trace_ctas[flashmla::trace::kMaxCtas][4];
}
#endif

namespace flashmla::trace {

#ifdef FLASHMLA_TRACE
__device__ __forceinline__ long long clock_now() {
  long long c;
  asm volatile("mov.u64 %0, %%clock64;" : "=l"(c));
  return c;
}
__device__ __forceinline__ long long ns_now() {
  long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ int cta_index() {
  return static_cast<int>(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
}

// What one CTA records: everything when `on` (the traced launch), recorded by the first thread of
// each math warpgroup.
struct Tracer {
  bool on;
  __device__ __forceinline__ bool recorder() const {
    return on && threadIdx.x % 128 == 0 && threadIdx.x < 256 && cta_index() < kMaxCtas;
  }
  __device__ __forceinline__ void mark(int piece, Event event) const {
    if (recorder() && piece < kMaxPieces) {
      flashmla_trace_events[cta_index()][threadIdx.x / 128][piece][event] = clock_now();
    }
  }
  __device__ __forceinline__ void piece(int piece, int batch, int num_blocks, bool is_final) const {
    if (recorder() && threadIdx.x == 0 && piece < kMaxPieces) {
      flashmla_trace_pieces[cta_index()][piece] =
          (static_cast<long long>(batch) << 32) | (static_cast<long long>(num_blocks) << 1) | (is_final ? 1 : 0);
    }
  }
  __device__ __forceinline__ void end() const {
    if (recorder() && threadIdx.x == 0) {
      flashmla_trace_ctas[cta_index()][2] = clock_now();
      flashmla_trace_ctas[cta_index()][3] = ns_now();
    }
  }
};

// Called by every thread of the CTA before its first __syncthreads: thread 0 counts the CTA and
// decides whether this launch is the traced one, and leaves the answer in `flag` (a shared word
// the kernel does not use yet), which every thread reads after the two barriers.
__device__ __forceinline__ Tracer begin(float* flag) {
  if (threadIdx.x == 0) {
    const unsigned long long grid = static_cast<unsigned long long>(gridDim.x) * gridDim.y * gridDim.z;
    const bool on = atomicAdd(&flashmla_trace_launched_ctas, 1ull) / grid == FLASHMLA_TRACE;
    *flag = on ? 1.f : 0.f;
    if (on && cta_index() < kMaxCtas) {
      flashmla_trace_ctas[cta_index()][0] = clock_now();
      flashmla_trace_ctas[cta_index()][1] = ns_now();
    }
  }
  __syncthreads();
  const bool on = *flag == 1.f;
  __syncthreads();
  return Tracer{on};
}
#else
struct Tracer {
  __device__ __forceinline__ void mark(int, Event) const {}
  __device__ __forceinline__ void piece(int, int, int, bool) const {}
  __device__ __forceinline__ void end() const {}
};
__device__ __forceinline__ Tracer begin(float*) { return Tracer{}; }
#endif

}  // namespace flashmla::trace
