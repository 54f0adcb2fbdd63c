import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEAD_DIM_V } from '../../src/config.js';
import { attendedKeyCount, HostProblem } from '../../src/reference/problem.js';
import {
  absWeightedVAt,
  type ErrorScales,
  referenceDecode,
} from '../../src/reference/reference.js';
import { decodeElement, HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { boundedErrorScales, keyMaxima } from '../../src/verify/error-scale-bounds.js';
import { comparePrecision } from '../../src/verify/precision.js';
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
    const aboveA = exact.absWeightedV.findIndex(
      (a, e) => a > absWeightedVAt(bounds, e) * (1 + 1e-12),
    );
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
        const first = (i * seqlenQ + s) * numHeadsQ * HEAD_DIM_V;
        for (let e = first; e < first + numHeadsQ * HEAD_DIM_V; e++)
          assert.equal(absWeightedVAt(bounds, e), 0, `${label}: A of an empty row`);
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
    assert.ok(reference.errorScales.absWeightedV[c] <= absWeightedVAt(bounds, c) * (1 + 1e-12));
});

test('the judge reads bounds stored per sequence and KV head as it reads them per element', () => {
  const random = new Random(33);
  const problem = generateProblem(
    {
      batch: 3,
      seqlenQ: 2,
      numHeadsQ: 4,
      numHeadsKv: 2,
      meanLength: 70,
      lengths: [70, 1, 130],
      causal: true,
      data: 'steep',
    },
    random,
  );
  const reference = referenceDecode(problem);
  const maxima = keyMaxima(problem.lengths, 2, new HostProblem(problem));
  const shared = boundedErrorScales(problem.q, problem.lengths, maxima, problem);
  assert.ok(shared.absWeightedVRows, 'stored per sequence and KV head');
  const perElement = {
    absWeightedV: Float64Array.from({ length: reference.out.numel }, (_, e) =>
      absWeightedVAt(shared, e),
    ),
    scoreMagnitude: shared.scoreMagnitude,
  };
  // A result off by growing amounts, so every check has a worst place and some places beyond.
  const result = { out: HostTensor.zeros('float32', reference.out.shape), lse: reference.lse };
  let e = 0;
  reference.out.forEachOffset((at) => {
    const want = decodeElement(reference.out.dtype, reference.out.data[at]);
    result.out.data[e] = want * (1 + 2 ** -9 * (e % 7)) + 1e-4 * ((e * 13) % 5);
    e++;
  });
  const judged = (errorScales: ErrorScales) =>
    comparePrecision(result, { out: reference.out, lse: reference.lse, errorScales });
  const report = judged(shared);
  assert.ok(report.element.beyond > 0 && report.element.beyond < reference.out.numel);
  assert.deepEqual(report, judged(perElement));
});
