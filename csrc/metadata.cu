// The tile scheduler (getMlaMetadata on the GPU). Grid: one CTA of kMetadataThreads threads;
// dynamic shared memory: batch * 4 bytes (at most 128 KiB; the launcher raises the limit).
//
// The threads load the lengths into shared memory and add up the total cost
// sum(ceil(len/64) + overhead) of the clamped lengths; then thread 0 walks the parts exactly as
// src/scheduler.ts does and writes tile_scheduler_metadata and num_splits; then thread z seals
// part z (csrc/schedule_seal.h). Costs are summed in 64-bit: the TypeScript walk uses exact
// (double) integers, so the two agree bit for bit for every int32 input.
#include <stdint.h>

#include "config.h"
#include "params.h"
#include "schedule_seal.h"
#include "smem_sizes.h"

namespace flashmla {
namespace {

static_assert(kMetadataThreads % 32 == 0 && kMetadataThreads <= 1024, "whole warps");
static_assert(sizeof(TileSchedule) == kMetadataIntsPerPart * sizeof(int32_t), "8 ints per part");
static_assert(kMetadataMaxSmemBytes + 1024 <= kSm90MaxSmemPerBlock, "the largest batch's lengths fit in shared memory");

// ceil(length / 64) without forming length + 63, which overflows for lengths near INT32_MAX.
__device__ __forceinline__ int32_t blocks_of(int32_t length) {
  return length / kPageBlockSize + (length % kPageBlockSize != 0 ? 1 : 0);
}

// A length as the schedule counts it: clamped to [0, max_seqlen].
__device__ __forceinline__ int32_t clamped(int32_t length, int32_t max_seqlen) {
  return min(max(length, 0), max_seqlen);
}

__device__ void schedule(const MetadataParams& p, const int32_t* raw_lengths, int32_t max_seqlen,
                         int32_t overhead, int64_t total_cost) {
  const int64_t parts = p.num_sm_parts;
  const int64_t payload = (total_cost + parts - 1) / parts + overhead;
  int32_t batch_index = 0;
  int32_t block = 0;
  int32_t split = 0;
  int32_t cumulative_splits = 0;
  p.num_splits[0] = 0;
  for (int32_t part = 0; part < p.num_sm_parts; ++part) {
    int32_t* out = p.tile_scheduler_metadata + static_cast<int64_t>(part) * kMetadataIntsPerPart;
    const int32_t begin_batch = batch_index;
    const int32_t begin_token = block * kPageBlockSize;
    const int32_t begin_split = split;
    int64_t remaining = payload;
    while (batch_index < p.batch) {
      const int32_t remaining_blocks = blocks_of(clamped(raw_lengths[batch_index], max_seqlen)) - block;
      if (remaining >= remaining_blocks + overhead) {
        // The rest of this sequence fits: finish it in this part.
        cumulative_splits += split + 1;
        p.num_splits[batch_index + 1] = cumulative_splits;
        remaining -= remaining_blocks + overhead;
        ++batch_index;
        block = 0;
        split = 0;
      } else {
        // Take what the payload allows of it beyond the overhead (less than remaining_blocks).
        if (remaining - overhead > 0) {
          block += static_cast<int32_t>(remaining - overhead);
          ++split;
        }
        break;
      }
    }
    int32_t end_batch;
    int32_t end_token;
    if (block > 0) {
      end_batch = batch_index;
      end_token = block * kPageBlockSize;
    } else {
      end_batch = batch_index - 1;
      end_token = batch_index > 0 ? clamped(raw_lengths[batch_index - 1], max_seqlen) : 0;
    }
    out[0] = begin_batch;
    out[1] = begin_token;
    out[2] = end_batch;
    out[3] = end_token;
    out[4] = begin_split;
    out[5] = 0;  // the seal, written by seal_parts once every num_splits entry exists
    out[6] = 0;
    out[7] = 0;
  }
}

// Thread z seals parts z, z + blockDim, ... (after the walk: reads what schedule() wrote).
__device__ void seal_parts(const MetadataParams& p, const int32_t* raw_lengths) {
  for (int32_t part = threadIdx.x; part < p.num_sm_parts; part += blockDim.x) {
    TileSchedule* s = reinterpret_cast<TileSchedule*>(p.tile_scheduler_metadata) + part;
    uint32_t seal = seal_of_fields(part, s->begin_batch, s->begin_token, s->end_batch, s->end_token, s->begin_split);
    if (s->end_batch >= s->begin_batch) {
      seal = seal_absorb(seal, p.num_splits[s->begin_batch]);
      for (int32_t i = s->begin_batch; i <= s->end_batch; ++i) {
        seal = seal_absorb(seal, raw_lengths[i]);
        seal = seal_absorb(seal, p.num_splits[i + 1]);
      }
    }
    s->seal = seal;
  }
}

}  // namespace
}  // namespace flashmla

extern "C" __global__ void __launch_bounds__(flashmla::kMetadataThreads, 1)
    flashmla_get_metadata(const __grid_constant__ MetadataParams p) {
  using namespace flashmla;
  extern __shared__ int32_t raw_lengths[];  // [batch], as given
  __shared__ int64_t warp_costs[kMetadataThreads / 32];

  if (p.batch <= 0 || p.batch > kMaxSchedulerBatch || p.num_sm_parts <= 0) return;
  const int32_t max_seqlen = p.max_seqlen > 0 ? p.max_seqlen : 0;
  const int32_t overhead = max(p.fixed_overhead_blocks, 0);

  int64_t cost = 0;
  for (int32_t i = threadIdx.x; i < p.batch; i += kMetadataThreads) {
    const int32_t length = p.cache_seqlens[i];
    raw_lengths[i] = length;
    cost += blocks_of(clamped(length, max_seqlen)) + overhead;
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) cost += __shfl_xor_sync(0xffffffffu, cost, offset);
  if (threadIdx.x % 32 == 0) warp_costs[threadIdx.x / 32] = cost;
  __syncthreads();

  if (threadIdx.x == 0) {
    int64_t total_cost = 0;
    for (int w = 0; w < kMetadataThreads / 32; ++w) total_cost += warp_costs[w];
    schedule(p, raw_lengths, max_seqlen, overhead, total_cost);
  }
  __syncthreads();  // the walk's global writes are visible to the CTA after the barrier
  seal_parts(p, raw_lengths);
}
