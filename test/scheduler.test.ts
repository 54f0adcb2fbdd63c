import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FIXED_OVERHEAD_BLOCKS,
  FIXED_OVERHEAD_BLOCKS_ONE_TILE,
  METADATA_INTS_PER_PART,
  PAGE_BLOCK_SIZE,
} from '../src/config.js';
import {
  computeTileSchedule,
  findStalePart,
  fixedOverheadBlocksFor,
  numSmPartsFor,
  partSchedule,
  piecesOfPart,
} from '../src/scheduler.js';
import { Random } from '../src/tensor/random.js';
import { drawLengths } from '../src/verify/problems.js';

/**
 * Checks every invariant of a schedule: each attended block covered exactly once, pieces in
 * order and block-aligned, split indices consecutive, no part over the payload.
 */
function checkSchedule(
  lengths: Int32Array,
  numSmParts: number,
  overhead = FIXED_OVERHEAD_BLOCKS,
): void {
  const { tileSchedulerMetadata, numSplits } = computeTileSchedule(
    lengths,
    numSmParts,
    undefined,
    overhead,
  );
  const batch = lengths.length;
  assert.equal(numSplits.length, batch + 1);
  assert.equal(numSplits[0], 0);
  const blocks = Array.from(lengths, (l) => Math.ceil(l / PAGE_BLOCK_SIZE));
  const totalCost = blocks.reduce((sum, b) => sum + b + overhead, 0);
  const payload = Math.ceil(totalCost / numSmParts) + overhead;

  const covered = blocks.map((b) => new Int32Array(b));
  const splitsSeen = blocks.map(() => [] as number[]);
  let previous: { batch: number; endToken: number } | null = null;
  for (let part = 0; part < numSmParts; part++) {
    const pieces = piecesOfPart(tileSchedulerMetadata, part, lengths);
    const schedule = partSchedule(tileSchedulerMetadata, part);
    if (schedule.endBatch < schedule.beginBatch) assert.equal(pieces.length, 0);
    let cost = 0;
    for (const piece of pieces) {
      assert.ok(piece.batch >= 0 && piece.batch < batch, `part ${part}: batch ${piece.batch}`);
      assert.ok(piece.beginToken % PAGE_BLOCK_SIZE === 0, 'pieces start on a block boundary');
      assert.ok(piece.beginToken <= piece.endToken && piece.endToken <= lengths[piece.batch]);
      // Pieces come in batch order and token order, each starting where the last ended.
      if (previous) {
        if (previous.batch === piece.batch) assert.equal(piece.beginToken, previous.endToken);
        else {
          assert.equal(piece.batch, previous.batch + 1, 'no sequence is skipped');
          assert.equal(piece.beginToken, 0);
          assert.equal(previous.endToken, lengths[previous.batch]);
        }
      } else {
        assert.equal(piece.batch, 0);
        assert.equal(piece.beginToken, 0);
      }
      previous = { batch: piece.batch, endToken: piece.endToken };
      const first = piece.beginToken / PAGE_BLOCK_SIZE;
      const last = Math.ceil(piece.endToken / PAGE_BLOCK_SIZE);
      for (let b = first; b < last; b++) covered[piece.batch][b]++;
      splitsSeen[piece.batch].push(piece.split);
      cost += last - first + overhead;
    }
    assert.ok(cost <= payload, `part ${part} costs ${cost} > payload ${payload}`);
  }
  assert.ok(
    previous === null || (previous.batch === batch - 1 && previous.endToken === lengths[batch - 1]),
    'all sequences done',
  );
  for (let i = 0; i < batch; i++) {
    assert.ok(
      covered[i].every((n) => n === 1),
      `sequence ${i}: every block exactly once`,
    );
    const count = numSplits[i + 1] - numSplits[i];
    assert.deepEqual(
      splitsSeen[i],
      Array.from({ length: count }, (_, k) => k),
      `sequence ${i}: splits 0..${count - 1}`,
    );
  }
}

test('part count follows FlashMLA: SMs / h_kv / row tiles, at least 1', () => {
  assert.equal(numSmPartsFor(132, 16, 1), 132);
  assert.equal(numSmPartsFor(132, 128, 1), 66);
  assert.equal(numSmPartsFor(132, 256, 1), 33);
  assert.equal(numSmPartsFor(132, 64, 8), 16);
  assert.equal(numSmPartsFor(132, 65, 3), 22);
  assert.equal(numSmPartsFor(132, 4096, 200), 1);
});

test('the overhead of a piece: 3 blocks with one row tile per KV head and 16+ sequences, else 5', () => {
  assert.equal(fixedOverheadBlocksFor(1, 16), 3);
  assert.equal(fixedOverheadBlocksFor(64, 128), 3);
  assert.equal(fixedOverheadBlocksFor(64, 15), 5);
  assert.equal(fixedOverheadBlocksFor(16, 1), 5);
  assert.equal(fixedOverheadBlocksFor(65, 128), 5);
  assert.equal(fixedOverheadBlocksFor(128, 16), 5);
  // Blocks [32, 2, 2] on 3 parts. With 3: cost 45, payload 18, so parts 0 and 1 take 15 blocks
  // of sequence 0 each and part 2 the rest of everything: sequence 0 in 3 splits. With 5: cost
  // 51, payload 22: 17 blocks, then the other 15 and nothing more; sequence 0 in 2 splits.
  const lengths = [2048, 128, 128];
  assert.deepEqual(
    Array.from(computeTileSchedule(lengths, 3, undefined, 3).numSplits),
    [0, 3, 4, 5],
  );
  assert.deepEqual(
    Array.from(computeTileSchedule(lengths, 3, undefined, 5).numSplits),
    [0, 2, 3, 4],
  );
  assert.deepEqual(
    Array.from(computeTileSchedule(lengths, 3).numSplits),
    [0, 2, 3, 4],
    'the default is FlashMLA overhead',
  );
  // A negative overhead counts as 0, as the metadata kernel counts it.
  assert.deepEqual(
    computeTileSchedule(lengths, 3, undefined, -4),
    computeTileSchedule(lengths, 3, undefined, 0),
  );
});

test('a hand-checked schedule', () => {
  // Lengths 100 and 300 tokens: 2 and 5 blocks, cost 7 + 10 = 17; 2 parts: payload ceil(17/2)+5 = 14.
  const { tileSchedulerMetadata, numSplits } = computeTileSchedule([100, 300], 2);
  // Part 0: sequence 0 whole (7), then 14-7-5 = 2 blocks of sequence 1 (split 0).
  assert.deepEqual(Array.from(tileSchedulerMetadata.slice(0, 5)), [0, 0, 1, 128, 0]);
  // Part 1: the remaining 3 blocks of sequence 1, as its split 1.
  assert.deepEqual(Array.from(tileSchedulerMetadata.slice(8, 13)), [1, 128, 1, 300, 1]);
  assert.deepEqual(Array.from(numSplits), [0, 1, 3]);
});

test('invariants over random batches, part counts and lengths', () => {
  const random = new Random(20261127);
  for (let trial = 0; trial < 300; trial++) {
    const batch = random.pick([1, 2, 3, 6, 17, 64, 128, 132, 133]);
    const mean = random.pick([0, 1, 20, 63, 64, 65, 140, 1000, 4096]);
    const varlen = random.pick(['off', 'normal', 'half-empty'] as const);
    const lengths = drawLengths(random, batch, mean, varlen, 1);
    const parts = random.pick([1, 2, 7, 33, 66, 132, 200]);
    checkSchedule(lengths, parts);
    checkSchedule(lengths, parts, FIXED_OVERHEAD_BLOCKS_ONE_TILE);
  }
});

test('zero-length sequences, all or some, first, middle and last', () => {
  for (const lengths of [[0], [0, 0, 0], [0, 100, 0], [5000, 0, 1], [1, 0]]) {
    for (const parts of [1, 3, 132]) checkSchedule(Int32Array.from(lengths), parts);
  }
});

test('one very long sequence among short ones is split across parts', () => {
  const lengths = new Int32Array(64).fill(20);
  lengths[17] = 64 * 4000;
  const { numSplits } = computeTileSchedule(lengths, 132);
  assert.ok(numSplits[18] - numSplits[17] > 100, 'the long sequence is cut into many splits');
  checkSchedule(lengths, 132);
});

test('more parts than blocks, and batches of several thousand', () => {
  checkSchedule(Int32Array.from([1, 2, 3]), 132);
  const random = new Random(5);
  checkSchedule(drawLengths(random, 5000, 300, 'normal', 1), 132);
  checkSchedule(drawLengths(random, 8000, 40, 'half-empty', 1), 16);
});

test('lengths are clamped to the capacity the scheduler is given', () => {
  const clamped = computeTileSchedule([1000, -5], 4, 128);
  const explicit = computeTileSchedule([128, 0], 4);
  // The same walk; only the seals differ, since they cover the lengths as given.
  const withoutSeals = (metadata: Int32Array) =>
    Array.from(metadata, (value, i) => (i % METADATA_INTS_PER_PART === 5 ? 0 : value));
  assert.deepEqual(
    withoutSeals(clamped.tileSchedulerMetadata),
    withoutSeals(explicit.tileSchedulerMetadata),
  );
  assert.deepEqual(clamped.numSplits, explicit.numSplits);
  assert.notEqual(clamped.tileSchedulerMetadata[5], explicit.tileSchedulerMetadata[5]);
});

test('a seal covers the lengths, the splits and the fields of its part', () => {
  const lengths = [700, 3, 0, 4096, 65];
  const { tileSchedulerMetadata, numSplits } = computeTileSchedule(lengths, 6);
  assert.equal(findStalePart(tileSchedulerMetadata, 6, lengths, numSplits), null);
  // The next decode step: one sequence grew by a token.
  const next = [...lengths];
  next[3] += 1;
  assert.ok(findStalePart(tileSchedulerMetadata, 6, next, numSplits));
  // Any edited field of any part, or any num_splits entry.
  for (let i = 0; i < tileSchedulerMetadata.length; i++) {
    if (i % METADATA_INTS_PER_PART > 5) continue; // the two unused ints
    const edited = tileSchedulerMetadata.slice();
    edited[i] += 1;
    assert.ok(findStalePart(edited, 6, lengths, numSplits), `metadata[${i}] edited`);
  }
  for (let i = 0; i < numSplits.length; i++) {
    const edited = numSplits.slice();
    edited[i] += 1;
    assert.ok(findStalePart(tileSchedulerMetadata, 6, lengths, edited), `numSplits[${i}] edited`);
  }
});
