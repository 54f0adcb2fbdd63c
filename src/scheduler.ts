/**
 * The tile scheduler: cuts the KV blocks of every sequence in a batch into `numSmParts`
 * contiguous pieces of balanced cost, so that a persistent grid of decode CTAs (one group per
 * part) stays equally busy across variable lengths. The GPU metadata kernel (csrc/metadata.cu)
 * runs the same walk and must produce exactly this output.
 */
import {
  FIXED_OVERHEAD_BLOCKS,
  FIXED_OVERHEAD_BLOCKS_ONE_TILE,
  METADATA_INTS_PER_PART,
  ONE_TILE_MIN_BATCH,
  PAGE_BLOCK_SIZE,
  ROW_TILE,
} from './config.js';

export interface TileSchedule {
  /** [numSmParts * 8] int32: per part {beginBatch, beginToken, endBatch, endToken, beginSplit, seal, 0, 0}. */
  tileSchedulerMetadata: Int32Array;
  /** [b + 1] int32: prefix sums of how many splits each sequence was cut into. */
  numSplits: Int32Array;
}

/** One part's metadata, decoded. A part with endBatch < beginBatch is empty. */
export interface PartSchedule {
  beginBatch: number;
  beginToken: number;
  endBatch: number;
  endToken: number;
  beginSplit: number;
}

/** One piece of work: a token range of one sequence, processed by one part. */
export interface Piece {
  part: number;
  batch: number;
  beginToken: number;
  endToken: number;
  /** Which split of its sequence this piece is. */
  split: number;
}

/**
 * FlashMLA's part count: the SMs shared among the KV heads and 64-row tiles of query rows, so
 * that grid = row tiles x KV heads x parts fills the GPU once.
 */
export function numSmPartsFor(
  smCount: number,
  numQRowsPerKvHead: number,
  numHeadsK: number,
): number {
  const rowTiles = Math.ceil(numQRowsPerKvHead / ROW_TILE);
  return Math.max(Math.floor(Math.floor(smCount / numHeadsK) / rowTiles), 1);
}

/**
 * The scheduler's cost of starting a piece, in KV blocks, for a batch of `batch` sequences with
 * this many query rows per KV head: FIXED_OVERHEAD_BLOCKS_ONE_TILE where they fit one 64-row
 * tile and the batch has at least ONE_TILE_MIN_BATCH sequences, else FIXED_OVERHEAD_BLOCKS.
 */
export function fixedOverheadBlocksFor(numQRowsPerKvHead: number, batch: number): number {
  return Math.ceil(numQRowsPerKvHead / ROW_TILE) <= 1 && batch >= ONE_TILE_MIN_BATCH
    ? FIXED_OVERHEAD_BLOCKS_ONE_TILE
    : FIXED_OVERHEAD_BLOCKS;
}

/**
 * Computes the schedule. Lengths are clamped to [0, maxSeqlen] (the block table's capacity) the
 * way the kernels clamp them, so a bad length can never send a kernel past a block-table row.
 * `fixedOverheadBlocks` is the cost of starting a piece (fixedOverheadBlocksFor gives the
 * backends' choice); a negative one counts as 0, as in the kernel.
 */
export function computeTileSchedule(
  cacheSeqlens: ArrayLike<number>,
  numSmParts: number,
  maxSeqlen = Number.MAX_SAFE_INTEGER,
  fixedOverheadBlocks = FIXED_OVERHEAD_BLOCKS,
): TileSchedule {
  const overhead = Math.max(fixedOverheadBlocks, 0);
  const batch = cacheSeqlens.length;
  const lengths = new Int32Array(batch);
  const blocks = new Int32Array(batch);
  let totalCost = 0;
  for (let i = 0; i < batch; i++) {
    lengths[i] = Math.min(Math.max(cacheSeqlens[i], 0), maxSeqlen);
    blocks[i] = Math.ceil(lengths[i] / PAGE_BLOCK_SIZE);
    totalCost += blocks[i] + overhead;
  }
  const payload = Math.ceil(totalCost / numSmParts) + overhead;

  const metadata = new Int32Array(numSmParts * METADATA_INTS_PER_PART);
  const numSplits = new Int32Array(batch + 1);
  let batchIndex = 0;
  let block = 0;
  let split = 0;
  let cumulativeSplits = 0;
  for (let part = 0; part < numSmParts; part++) {
    const at = part * METADATA_INTS_PER_PART;
    metadata[at] = batchIndex;
    metadata[at + 1] = block * PAGE_BLOCK_SIZE;
    metadata[at + 4] = split;
    let remaining = payload;
    while (batchIndex < batch) {
      const remainingBlocks = blocks[batchIndex] - block;
      if (remaining >= remainingBlocks + overhead) {
        // The rest of this sequence fits: finish it here.
        cumulativeSplits += split + 1;
        numSplits[batchIndex + 1] = cumulativeSplits;
        remaining -= remainingBlocks + overhead;
        batchIndex++;
        block = 0;
        split = 0;
      } else {
        // Take what the payload allows of it (if anything beyond the overhead) and stop.
        if (remaining - overhead > 0) {
          block += remaining - overhead;
          split++;
        }
        break;
      }
    }
    if (block > 0) {
      metadata[at + 2] = batchIndex;
      metadata[at + 3] = block * PAGE_BLOCK_SIZE;
    } else {
      metadata[at + 2] = batchIndex - 1;
      metadata[at + 3] = batchIndex > 0 ? lengths[batchIndex - 1] : 0;
    }
  }
  for (let part = 0; part < numSmParts; part++) {
    metadata[part * METADATA_INTS_PER_PART + SEAL_INDEX] = sealOfPart(
      metadata,
      part,
      cacheSeqlens,
      numSplits,
    );
  }
  return { tileSchedulerMetadata: metadata, numSplits };
}

/** Where a part's seal sits among its 8 ints. */
const SEAL_INDEX = 5;

/** One round of the seal's hash (csrc/schedule_seal.h: seal_absorb), on 32-bit integers. */
function sealAbsorb(hash: number, value: number): number {
  let h = (hash ^ value) >>> 0;
  h = Math.imul(h, 0x9e3779b1) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The seal of one part, as csrc/schedule_seal.h defines it: a hash of the part's fields, the raw
 * cache_seqlens of its sequences and their num_splits entries. The decode kernels recompute it
 * from what they read, so a schedule made for other lengths, or edited, is reported instead of
 * answered. Returned as an int32 (the metadata's element type).
 */
export function sealOfPart(
  metadata: ArrayLike<number>,
  part: number,
  cacheSeqlens: ArrayLike<number>,
  numSplits: ArrayLike<number>,
): number {
  const { beginBatch, beginToken, endBatch, endToken, beginSplit } = partSchedule(metadata, part);
  let hash = 0x4d4c4131;
  for (const field of [part, beginBatch, beginToken, endBatch, endToken, beginSplit]) {
    hash = sealAbsorb(hash, field);
  }
  if (endBatch >= beginBatch) {
    hash = sealAbsorb(hash, numSplits[beginBatch]);
    for (let i = beginBatch; i <= endBatch; i++) {
      hash = sealAbsorb(hash, cacheSeqlens[i]);
      hash = sealAbsorb(hash, numSplits[i + 1]);
    }
  }
  return hash | 0;
}

/**
 * The first part whose seal does not match these lengths and splits (the schedule was made for
 * other lengths, or edited), with the first sequence it covers; null when every part matches.
 * Sequences outside [0, b) make the part mismatch, as they do on the GPU.
 */
export function findStalePart(
  metadata: ArrayLike<number>,
  numSmParts: number,
  cacheSeqlens: ArrayLike<number>,
  numSplits: ArrayLike<number>,
): { part: number; batch: number } | null {
  const batch = cacheSeqlens.length;
  for (let part = 0; part < numSmParts; part++) {
    const { beginBatch, endBatch } = partSchedule(metadata, part);
    const inRange = endBatch < beginBatch || (beginBatch >= 0 && endBatch < batch);
    const written = metadata[part * METADATA_INTS_PER_PART + SEAL_INDEX];
    if (!inRange || sealOfPart(metadata, part, cacheSeqlens, numSplits) !== written) {
      return { part, batch: Math.max(beginBatch, 0) };
    }
  }
  return null;
}

export function partSchedule(metadata: ArrayLike<number>, part: number): PartSchedule {
  const at = part * METADATA_INTS_PER_PART;
  return {
    beginBatch: metadata[at],
    beginToken: metadata[at + 1],
    endBatch: metadata[at + 2],
    endToken: metadata[at + 3],
    beginSplit: metadata[at + 4],
  };
}

/**
 * The pieces of one part, in order, as the decode kernel walks them. `lengths` are the
 * (clamped) sequence lengths the schedule was made from.
 */
export function piecesOfPart(
  metadata: ArrayLike<number>,
  part: number,
  lengths: ArrayLike<number>,
): Piece[] {
  const { beginBatch, beginToken, endBatch, endToken, beginSplit } = partSchedule(metadata, part);
  const pieces: Piece[] = [];
  for (let batch = beginBatch; batch <= endBatch; batch++) {
    pieces.push({
      part,
      batch,
      beginToken: batch === beginBatch ? beginToken : 0,
      endToken: batch === endBatch ? endToken : lengths[batch],
      split: batch === beginBatch ? beginSplit : 0,
    });
  }
  return pieces;
}
