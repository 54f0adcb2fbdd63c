// Shapes and tile sizes shared by every kernel. The TypeScript side mirrors them in src/config.ts;
// a test pins the two against each other through the layout file the build emits.
#pragma once

namespace flashmla {

constexpr int kHeadDimK = 576;          // q/k head dim: 512 latent + 64 RoPE channels
constexpr int kHeadDimV = 512;          // v = the first 512 channels of each cache row
constexpr int kPageBlockSize = 64;      // tokens per KV-cache block
constexpr int kRowTile = 64;            // query rows per decode CTA (the MMA M of the kernel)
constexpr int kMetadataIntsPerPart = 8; // ints per part in tile_scheduler_metadata
constexpr int kMaxSchedulerBatch = 32768; // batches the scheduler kernel holds in shared memory

}  // namespace flashmla
