// The seal of one part of the tile schedule (TileSchedule::seal). The scheduler writes it (the
// kernel csrc/metadata.cu, and src/scheduler.ts on the host, bit for bit); every decode kernel
// recomputes it from the values it actually reads and reports kErrorStaleSchedule when they
// differ. It costs the decode kernels nothing to read: the part's fields, the lengths of its
// sequences and their num_splits entries are all read by the walk anyway.
//
// seal(part) = absorb over, in order: the part index, begin_batch, begin_token, end_batch,
// end_token, begin_split; then, unless the part is empty (end_batch < begin_batch),
// num_splits[begin_batch] and for each sequence i = begin_batch .. end_batch the raw
// cache_seqlens[i] and num_splits[i + 1].
#pragma once
#include <stdint.h>

#ifdef __CUDACC__
#define FLASHMLA_HOST_DEVICE __host__ __device__
#else
#define FLASHMLA_HOST_DEVICE
#endif

namespace flashmla {

constexpr uint32_t kSealSeed = 0x4d4c4131u;  // "MLA1"

// One 32-bit multiply-xorshift round: any change to a value changes the result with
// overwhelming probability, and the host twin computes it with Math.imul.
FLASHMLA_HOST_DEVICE inline uint32_t seal_absorb(uint32_t hash, int32_t value) {
  hash ^= static_cast<uint32_t>(value);
  hash *= 0x9E3779B1u;
  hash ^= hash >> 16;
  return hash;
}

// The part's own fields: the first half of its seal.
FLASHMLA_HOST_DEVICE inline uint32_t seal_of_fields(int32_t part, int32_t begin_batch, int32_t begin_token,
                                                    int32_t end_batch, int32_t end_token, int32_t begin_split) {
  uint32_t hash = kSealSeed;
  hash = seal_absorb(hash, part);
  hash = seal_absorb(hash, begin_batch);
  hash = seal_absorb(hash, begin_token);
  hash = seal_absorb(hash, end_batch);
  hash = seal_absorb(hash, end_token);
  hash = seal_absorb(hash, begin_split);
  return hash;
}

}  // namespace flashmla
