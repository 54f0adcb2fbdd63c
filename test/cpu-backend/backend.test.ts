/**
 * The CPU backend (split + combine, the GPU's algorithm on the host) against the float64
 * reference, over a fixed-seed pairwise sample of TESTING.md's grid and a random sweep, sized
 * for CI.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/tensor/random.js';
import { DATA_KIND_NAMES, generateProblem, type ProblemConfig } from '../../src/verify/problems.js';
import { assertHostDecodeMatches } from '../support/decode.js';
import { pairwiseDesign } from '../support/pairwise.js';

const HEAD_LAYOUTS = [
  [1, 1],
  [3, 1],
  [3, 3],
  [9, 3],
  [16, 1],
  [16, 2],
  [32, 8],
  [63, 3],
  [64, 1],
  [64, 8],
  [126, 2],
  [128, 1],
] as const;

/** Keeps a CPU case small: query rows times cache tokens. */
function cost(config: ProblemConfig): number {
  return config.batch * config.seqlenQ * config.numHeadsQ * Math.max(config.meanLength, 1);
}

test('pairwise sample of the grid (fixed seed)', () => {
  const random = new Random(1127);
  const rows = pairwiseDesign(
    {
      batch: [1, 2, 6, 17],
      seqlenQ: [1, 2, 3, 4],
      meanLength: [0, 1, 20, 63, 64, 65, 127, 128, 140],
      heads: HEAD_LAYOUTS,
      causal: [false, true],
      varlen: ['off', 'normal', 'half-empty'] as const,
      dtype: ['bf16', 'fp16'] as const,
      paddedStrides: [false, true],
      paddingEntry: ['huge', 'negative', 'zero'] as const,
      softmaxScale: [undefined, 0.5, 192 ** -0.5],
      data: DATA_KIND_NAMES,
    },
    random,
    (row) =>
      cost({ ...row, numHeadsQ: row.heads[0], numHeadsKv: row.heads[1] } as ProblemConfig) <= 40000,
  );
  assert.ok(rows.length >= 40, `the design has ${rows.length} rows`);
  for (const row of rows) {
    const config: ProblemConfig = { ...row, numHeadsQ: row.heads[0], numHeadsKv: row.heads[1] };
    assertHostDecodeMatches(generateProblem(config, random), 'pairwise');
  }
});

test('random sweep: 200 small configurations (fixed seed)', () => {
  const random = new Random(4096);
  let done = 0;
  while (done < 200) {
    const [numHeadsQ, numHeadsKv] = random.pick(HEAD_LAYOUTS);
    const config: ProblemConfig = {
      batch: random.pick([1, 2, 3, 6]),
      seqlenQ: random.pick([1, 2, 3, 4, 8]),
      numHeadsQ,
      numHeadsKv,
      meanLength: random.pick([0, 1, 5, 20, 63, 64, 65, 100, 130]),
      varlen: random.pick(['off', 'normal', 'half-empty'] as const),
      causal: random.uniform() < 0.5,
      dtype: random.pick(['bf16', 'fp16'] as const),
      softmaxScale: random.pick([undefined, 0.5, 192 ** -0.5]),
      data: random.pick(DATA_KIND_NAMES),
      paddedStrides: random.uniform() < 0.3,
    };
    if (cost(config) > 12000) continue;
    assertHostDecodeMatches(generateProblem(config, random), `sweep ${done}`);
    done++;
  }
});
