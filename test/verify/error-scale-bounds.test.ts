import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEAD_DIM_V } from '../../src/config.js';
import { attendedKeyCount, HostProblem } from '../../src/reference/problem.js';
import { referenceDecode } from '../../src/reference/reference.js';
import { Random } from '../../src/tensor/random.js';
import { boundedErrorScales, keyMaxima } from '../../src/verify/error-scale-bounds.js';
import { DATA_KIND_NAMES, generateProblem } from '../../src/verify/problems.js';

test('the bounded error scales (for the GPU oracle) lie above the exact ones, 0 where nothing is attended', () => {
  const random = new Random(31);
  for (let trial = 0; trial < 24; trial++) {
    const [numHeadsQ, numHeadsKv] = random.pick([
      [1, 1],
      [4, 2],
      [9, 3],
    ] as const);
    const problem = generateProblem(
      {
        batch: 3,
        seqlenQ: random.pick([1, 2, 4]),
        numHeadsQ,
        numHeadsKv,
        meanLength: random.pick([1, 20, 70, 130]),
        varlen: random.pick(['off', 'normal', 'half-empty'] as const),
        causal: random.uniform() < 0.5,
        dtype: random.pick(['bf16', 'fp16'] as const),
        data: random.pick(DATA_KIND_NAMES),
        softmaxScale: random.pick([undefined, 0.5]),
        paddedStrides: random.uniform() < 0.3,
      },
      random,
    );
    const exact = referenceDecode(problem, { errorScales: true }).errorScales;
    const maxima = keyMaxima(problem.lengths, numHeadsKv, new HostProblem(problem));
    const bounds = boundedErrorScales(problem.q, problem.lengths, maxima, problem);
    const label = `trial ${trial} (seed 31)`;
    const aboveA = exact.absWeightedV.findIndex((a, e) => a > bounds.absWeightedV[e] * (1 + 1e-12));
    assert.equal(aboveA, -1, `${label}: A above its bound at ${aboveA}`);
    const aboveB = exact.scoreMagnitude.findIndex(
      (b, e) => b > bounds.scoreMagnitude[e] * (1 + 1e-12),
    );
    assert.equal(aboveB, -1, `${label}: B above its bound at ${aboveB}`);
    // Rows with nothing to attend keep zero scales: their out must stay exactly 0.
    const [batch, seqlenQ] = problem.q.shape;
    for (let i = 0; i < batch; i++) {
      for (let s = 0; s < seqlenQ; s++) {
        if (attendedKeyCount(problem.lengths[i], seqlenQ, s, problem.causal) > 0) continue;
        const row = bounds.absWeightedV.subarray(
          (i * seqlenQ + s) * numHeadsQ * HEAD_DIM_V,
          (i * seqlenQ + s + 1) * numHeadsQ * HEAD_DIM_V,
        );
        assert.ok(
          row.every((x) => x === 0),
          `${label}: A of an empty row`,
        );
        for (let h = 0; h < numHeadsQ; h++)
          assert.equal(bounds.scoreMagnitude[(i * numHeadsQ + h) * seqlenQ + s], 0);
      }
    }
  }
});

test('keys holding NaN are left out of the maxima; the rows attending them are NaN in the reference', () => {
  const problem = generateProblem(
    {
      batch: 1,
      seqlenQ: 2,
      numHeadsQ: 2,
      numHeadsKv: 1,
      meanLength: 0,
      lengths: [70],
      causal: true,
    },
    new Random(32),
  );
  const clean = keyMaxima(problem.lengths, 1, new HostProblem(problem));
  problem.kCache.set(Number.NaN, problem.blockTable.get(0, 1), 5, 0, 3); // token 69, the last
  const poisoned = keyMaxima(problem.lengths, 1, new HostProblem(problem));
  assert.ok(poisoned.maxAbsV.every((x) => Number.isFinite(x)));
  assert.ok(poisoned.maxKeyNorm[0] <= clean.maxKeyNorm[0]);
  // Row 0 attends tokens 0..68 and stays finite, bounded by the clean keys; row 1 is NaN.
  const reference = referenceDecode(problem, { errorScales: true });
  const bounds = boundedErrorScales(problem.q, problem.lengths, poisoned, problem);
  assert.ok(Number.isFinite(reference.lse.get(0, 0, 0)));
  assert.ok(Number.isNaN(reference.lse.get(0, 0, 1)));
  for (let c = 0; c < HEAD_DIM_V; c++)
    assert.ok(reference.errorScales.absWeightedV[c] <= bounds.absWeightedV[c] * (1 + 1e-12));
});
