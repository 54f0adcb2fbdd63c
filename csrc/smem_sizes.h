// Launch shapes and shared-memory plans of every kernel, in plain C++ so that the host program
// scripts/emit-layout.cpp can include it and publish the numbers in dist/kernels/layout.json for
// the TypeScript launchers. Each kernel static_asserts that it uses exactly these.
#pragma once
#include <stdint.h>

#include "config.h"

namespace flashmla {

constexpr int kSm90MaxSmemPerBlock = 227 * 1024;  // the opt-in limit of one CTA on sm_90

// ---- decode (csrc/decode_seesaw_sm90.cu) ------------------------------------------
// Warpgroups 0 and 1 do the math (each owns 256 of the 512 output columns); one warp of
// warpgroup 2 issues the TMA loads of K. The 384 threads start with 168 registers each
// (65536 / 384); the producer gives most of its registers to the math warpgroups (setmaxnreg).
constexpr int kSeesawThreads = 384;
constexpr int kSeesawMathThreads = 256;
constexpr int kSeesawMathRegisters = 224;
constexpr int kSeesawProducerRegisters = 56;
static_assert(kSeesawMathThreads * kSeesawMathRegisters + (kSeesawThreads - kSeesawMathThreads) * kSeesawProducerRegisters <=
                  65536,
              "the register file holds both roles");

constexpr int kSubtileCols = 64;                              // channels per 128-byte swizzled row
constexpr int kSubtileBytes = kPageBlockSize * kSubtileCols * 2;  // 64 rows x 128 bytes = 8 KiB
constexpr int kSubtilesK = kHeadDimK / kSubtileCols;          // 9 per Q tile or KV block
constexpr int kSubtilesV = kHeadDimV / kSubtileCols;          // the first 8 are V

// The shared-memory plan. Every tile is a stack of 64 x 64 sub-tiles in the layout a TMA box with
// 128-byte swizzle writes (the 16-byte chunks of row r XOR-permuted by r % 8), which is also the
// K-major and MN-major wgmma operand layout. Sub-tiles must start on 1024-byte boundaries (the
// swizzle is a function of the address), so the launch adds 1 KiB of slack and the kernel rounds
// the base up.
struct SeesawSharedStorage {
  uint8_t q[kSubtilesK][kSubtileBytes];      // the query tile, 64 rows x 576
  uint8_t kv[2][kSubtilesK][kSubtileBytes];  // two KV blocks; sub-tile 8 (RoPE) of kv[1] carries P1
  uint8_t p0[kSubtileBytes];                 // warpgroup 0's probabilities, for warpgroup 1
  float block_max[2][kRowTile];              // each warpgroup's row maxima of its block (raw q.k)
  float row_sum[2][kRowTile];                // each warpgroup's share of the row sums
  uint64_t kv_full[2][kSubtilesK];           // one mbarrier per sub-tile: its TMA has landed
  uint64_t kv_free[5];                       // per group of sub-tiles: its last reader is done
};
constexpr int kSeesawSmemAlignment = 1024;
constexpr int kSeesawSmemBytes = static_cast<int>(sizeof(SeesawSharedStorage)) + kSeesawSmemAlignment;
static_assert(kSeesawSmemBytes <= kSm90MaxSmemPerBlock, "seesaw shared memory exceeds 227 KiB");

// ---- metadata (csrc/metadata.cu) -------------------------------------------------------------
constexpr int kMetadataThreads = 256;
// Dynamic shared memory: one int32 (the clamped length) per sequence: batch * 4 bytes.
constexpr int kMetadataSmemBytesPerSequence = 4;
constexpr int kMetadataMaxSmemBytes = kMaxSchedulerBatch * kMetadataSmemBytesPerSequence;  // 128 KiB

// ---- combine (csrc/combine.cu) ---------------------------------------------------------------
constexpr int kCombineRowsPerBlock = 4;   // one warp per query row
constexpr int kCombineChannelSlices = 4;  // CTAs per row block, each merging 128 of the 512 channels
constexpr int kCombineThreads = 32 * kCombineRowsPerBlock;

// ---- reference (csrc/reference.cu) -----------------------------------------------------------
constexpr int kReferenceThreads = 256;
// Dynamic shared memory: one float32 score per attended key. The launcher passes
// 4 * min(longest attended length, kReferenceMaxKeys) bytes; the kernel reads the size it got
// (%dynamic_smem_size) and writes NaN rows rather than overflow when a row needs more.
constexpr int kReferenceSmemBytesPerKey = 4;
constexpr int kReferenceMaxKeys = 32768;
constexpr int kReferenceMaxSmemBytes = kReferenceMaxKeys * kReferenceSmemBytesPerKey;  // 128 KiB

// ---- testing utilities (csrc/testing.cu) -----------------------------------------------------
constexpr int kFillThreads = 256;
constexpr int kCopyThreads = 256;
constexpr int kTmaProbeThreads = 128;
constexpr int kTmaProbeBoxRows = 64;  // the box the probe's tensor map must describe: 64 x 64 bf16
constexpr int kTmaProbeBoxCols = 64;
constexpr int kTmaProbeBytes = kTmaProbeBoxRows * kTmaProbeBoxCols * 2;

}  // namespace flashmla
