/**
 * The fixed shapes of MLA decode and the scheduler's constants. csrc/config.h holds the same
 * numbers for the kernels; a test pins the two together through the layout file the build emits.
 */

/** q/k head dim: 512 latent channels + 64 RoPE channels. */
export const HEAD_DIM_K = 576;
/** v head dim: the first 512 channels of each cache row. */
export const HEAD_DIM_V = 512;
/** Tokens per KV-cache block. */
export const PAGE_BLOCK_SIZE = 64;
/** Query rows per decode CTA (the kernel's MMA M). */
export const ROW_TILE = 64;
/**
 * Scheduler cost of starting a piece of a sequence, in KV blocks (FlashMLA's value), where each
 * KV head has several 64-row tiles of query rows: the math sets the pace.
 */
export const FIXED_OVERHEAD_BLOCKS = 5;
/**
 * The same where each KV head has one tile (h_q·s_q/h_kv <= 64) and the batch is large (at least
 * ONE_TILE_MIN_BATCH sequences): the K loads set the pace and a piece's start costs less of it
 * (variable-length rows 1.5-2.5% faster than with 5 on the H200). Small batches keep 5: their
 * sequences are cut into many short pieces whose starts are the call's latency (with 3, one
 * 8192-token sequence took 52% longer).
 */
export const FIXED_OVERHEAD_BLOCKS_ONE_TILE = 3;
/** The smallest batch that gets FIXED_OVERHEAD_BLOCKS_ONE_TILE. */
export const ONE_TILE_MIN_BATCH = 16;
/** int32 entries per part in tileSchedulerMetadata. */
export const METADATA_INTS_PER_PART = 8;
/** Largest batch the GPU scheduler kernel holds in shared memory. */
export const MAX_SCHEDULER_BATCH = 32768;
/** SM count the CPU backend schedules for, so that it cuts work the way an H100 would. */
export const CPU_NOMINAL_SM_COUNT = 132;
/** Query rows one block of the combine kernel merges (csrc/smem_sizes.h kCombineRowsPerBlock). */
export const COMBINE_ROWS_PER_BLOCK = 4;
