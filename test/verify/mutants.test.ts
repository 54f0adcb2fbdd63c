/**
 * Tests of the tests: the precision rule against a CPU model of a tensor-core kernel
 * (kernel-model.ts), correct and with one bug each, over fixed-seed problems of every data kind.
 *
 * - The correct model (bf16/fp16 P, float32 accumulation) must pass everywhere, with margin: the
 *   worst error/bound ratio of each check, per data kind, is printed and held below MARGIN.
 * - Each mutant must fail wherever its bug moves the output measurably. "Measurably" is judged
 *   on the bug alone (bugEffect): the mutant and the correct model, both in exact arithmetic,
 *   measured in units of the rule's bounds; measurable means an effect of at least 2, twice the
 *   envelope the rule grants correct rounding, or a moved Inf/NaN. Effects below that are listed
 *   with their size: a bug that small hides in the rounding noise of a correct kernel.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { HEAD_DIM_V } from '../../src/config.js';
import {
  type ErrorScales,
  type ReferenceResult,
  referenceDecode,
  SMALLEST_NORMAL,
} from '../../src/reference/reference.js';
import type { HostTensor } from '../../src/tensor/host-tensor.js';
import { Random } from '../../src/tensor/random.js';
import { formatRatio, judgeDecode } from '../../src/verify/precision.js';
import { type DataKind, generateProblem, type Problem } from '../../src/verify/problems.js';
import { describeProblem } from '../support/decode.js';
import { BUGS, type Bug, decodeModel } from './kernel-model.js';

/** A correct kernel must stay this far inside every bound. */
const MARGIN = 0.8;
/** An effect this many times the envelope of correct rounding is measurable. */
const MEASURABLE = 2;
const SEED = 909;

const KINDS: readonly { name: string; data: DataKind; softmaxScale?: number }[] = [
  { name: 'gentle', data: 'gentle' },
  { name: 'steep 576^-1/2', data: 'steep' },
  { name: 'steep 192^-1/2', data: 'steep', softmaxScale: 192 ** -0.5 },
  { name: 'steep 0.5', data: 'steep', softmaxScale: 0.5 },
  { name: 'q x 10', data: 'q10' },
  { name: 'q x 100', data: 'q100' },
  // Scores of ~10^3: the float32 score error moves P as much as rounding P does.
  { name: 'q x 100, 0.5', data: 'q100', softmaxScale: 0.5 },
];

/** Shapes where every bug can show: grouped heads, causal s_q > 1, several blocks, short rows. */
const SHAPES = [
  { batch: 2, seqlenQ: 1, numHeadsQ: 16, numHeadsKv: 1, lengths: [20, 150] },
  { batch: 1, seqlenQ: 4, numHeadsQ: 6, numHeadsKv: 2, lengths: [130], causal: true },
  { batch: 2, seqlenQ: 2, numHeadsQ: 8, numHeadsKv: 2, lengths: [65, 200], causal: true },
  { batch: 1, seqlenQ: 1, numHeadsQ: 4, numHeadsKv: 4, lengths: [300] },
  { batch: 3, seqlenQ: 3, numHeadsQ: 9, numHeadsKv: 3, lengths: [2, 64, 129], causal: true },
  { batch: 1, seqlenQ: 2, numHeadsQ: 12, numHeadsKv: 3, lengths: [190] },
  { batch: 2, seqlenQ: 1, numHeadsQ: 32, numHeadsKv: 8, lengths: [63, 100] },
  { batch: 1, seqlenQ: 3, numHeadsQ: 2, numHeadsKv: 1, lengths: [500], causal: true },
] as const;

interface Case {
  kind: string;
  problem: Problem;
  reference: ReferenceResult & { errorScales: ErrorScales };
  /** The correct model in exact arithmetic: what "the bug did nothing" is compared with. */
  exact: { out: HostTensor; lse: HostTensor };
}

let cases: Case[] | undefined;

/** Every shape in both dtypes for every data kind, drawn once from SEED. */
function allCases(): Case[] {
  if (cases) return cases;
  const random = new Random(SEED);
  cases = [];
  for (const kind of KINDS) {
    for (const shape of SHAPES) {
      for (const dtype of ['bf16', 'fp16'] as const) {
        const problem = generateProblem(
          { ...shape, meanLength: 0, dtype, data: kind.data, softmaxScale: kind.softmaxScale },
          random,
        );
        cases.push({
          kind: kind.name,
          problem,
          reference: referenceDecode(problem, { errorScales: true }),
          exact: decodeModel(problem, { exact: true }),
        });
      }
    }
  }
  return cases;
}

const CHECKS = ['element', 'row', 'tensor', 'lse'] as const;

/**
 * The size of a bug on its own: the mutant against the correct model, both in exact arithmetic,
 * in units of the rule's bounds — with the rule's numbers (docs/precision.md) written out here, not
 * taken from the code under test, so that loosening the rule leaves this measure alone. The
 * largest element and lse error/bound ratio, and the square roots of the cosine ratios (a cosine
 * distance is quadratic in the error); Infinity where an Inf or NaN moved.
 */
function bugEffect(
  bugged: { out: HostTensor; lse: HostTensor },
  correct: { out: HostTensor; lse: HostTensor },
  { errorScales }: Case['reference'],
  dtype: 'bf16' | 'fp16',
): { effect: number; parts: string } {
  const epsilon = dtype === 'bf16' ? 2 ** -7 : 2 ** -10;
  const phi = SMALLEST_NORMAL[dtype];
  const [m, x] = [bugged.out.data, correct.out.data];
  let moved = false;
  const sameNonFinite = (a: number, b: number) =>
    Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  let element = 0;
  let row = 0;
  let dot = 0;
  let norms = 0;
  let reference = 0;
  const [, seqlenQ, numHeadsQ] = correct.out.shape;
  for (let base = 0; base < x.length; base += HEAD_DIM_V) {
    let [rowDot, rowNorms, rowReference, finite] = [0, 0, 0, true];
    const rowIndex = base / HEAD_DIM_V;
    const [b, s, h] = [
      Math.floor(rowIndex / (seqlenQ * numHeadsQ)),
      Math.floor(rowIndex / numHeadsQ) % seqlenQ,
      rowIndex % numHeadsQ,
    ];
    const scoreSlack = 2 * 2 ** -20 * errorScales.scoreMagnitude[(b * numHeadsQ + h) * seqlenQ + s];
    for (let e = base; e < base + HEAD_DIM_V; e++) {
      if (!Number.isFinite(x[e]) || !Number.isFinite(m[e])) {
        moved ||= !sameNonFinite(m[e], x[e]);
        finite = false;
        continue;
      }
      const a = errorScales.absWeightedV[e];
      const bound = epsilon * (Math.max(Math.abs(x[e]), phi) + a) + scoreSlack * a;
      element = Math.max(element, Math.abs(m[e] - x[e]) / bound);
      rowDot += m[e] * x[e];
      rowNorms += m[e] * m[e] + x[e] * x[e];
      rowReference += x[e] * x[e];
    }
    if (finite && rowReference >= Math.max(1e-12, HEAD_DIM_V * phi ** 2))
      row = Math.max(row, (1 - (2 * rowDot) / rowNorms) / 2e-5);
    dot += rowDot;
    norms += rowNorms;
    reference += rowReference;
  }
  const tensor =
    reference >= Math.max(1e-12, x.length * phi ** 2) ? (1 - (2 * dot) / norms) / 5e-6 : 0;
  let lse = 0;
  bugged.lse.data.forEach((got, e) => {
    const want = correct.lse.data[e];
    if (!Number.isFinite(want) || !Number.isFinite(got)) {
      moved ||= !sameNonFinite(got, want);
      return;
    }
    const scores = 2 ** -20 * errorScales.scoreMagnitude[e];
    lse = Math.max(
      lse,
      Math.abs(got - want) / Math.max(1e-6, (8.01 / 65536) * Math.abs(want), scores),
    );
  });
  const parts = { element, row: Math.sqrt(row), tensor: Math.sqrt(tensor), lse };
  const text = Object.entries(parts).map(([check, ratio]) => `${check} ${formatRatio(ratio)}`);
  return {
    effect: moved ? Number.POSITIVE_INFINITY : Math.max(...Object.values(parts)),
    parts: text.join(', '),
  };
}

function sameValues(a: HostTensor, b: HostTensor): boolean {
  return a.data.every((x, e) => Object.is(x, b.data[e]));
}

test('the correct kernel model passes every data kind, with margin', (t: TestContext) => {
  const worst = new Map<string, Record<(typeof CHECKS)[number], number>>();
  for (const { kind, problem, reference } of allCases()) {
    const verdict = judgeDecode(decodeModel(problem), problem, reference);
    assert.ok(
      verdict.ok,
      `${kind} ${describeProblem(problem)} (seed ${SEED}): ${verdict.report.failures.join('\n')}`,
    );
    const ratios = worst.get(kind) ?? { element: 0, row: 0, tensor: 0, lse: 0 };
    for (const check of CHECKS)
      ratios[check] = Math.max(ratios[check], verdict.report[check].ratio);
    worst.set(kind, ratios);
  }
  t.diagnostic('worst error/bound of the correct model (element, row, tensor, lse):');
  for (const [kind, ratios] of worst) {
    t.diagnostic(`  ${kind.padEnd(15)} ${CHECKS.map((c) => ratios[c].toFixed(3)).join('  ')}`);
    for (const check of CHECKS)
      assert.ok(ratios[check] <= MARGIN, `${kind}: ${check} ratio ${ratios[check]} > ${MARGIN}`);
  }
});

for (const bug of Object.keys(BUGS) as Bug[]) {
  test(`the rule rejects the mutant "${bug}" wherever it moves the output measurably`, (t) => {
    let untouched = 0;
    let measurable = 0;
    let rejected = 0;
    const slipped: string[] = [];
    const faint: string[] = [];
    for (const { kind, problem, reference, exact } of allCases()) {
      const bugOnly = decodeModel(problem, { bug, exact: true });
      if (sameValues(bugOnly.out, exact.out) && sameValues(bugOnly.lse, exact.lse)) {
        untouched++;
        continue;
      }
      const { effect, parts } = bugEffect(bugOnly, exact, reference, problem.q.dtype as 'bf16');
      const verdict = judgeDecode(decodeModel(problem, { bug }), problem, reference);
      const label = `${kind} ${describeProblem(problem)}`;
      if (effect >= MEASURABLE) {
        measurable++;
        if (verdict.ok) slipped.push(`${label}: effect ${effect.toFixed(2)}, ${verdict.summary}`);
        else rejected++;
      } else {
        faint.push(
          `${label}: effect ${effect.toFixed(2)} (${parts}), ${verdict.ok ? 'accepted' : 'rejected anyway'}`,
        );
      }
    }
    t.diagnostic(
      `${bug} (${BUGS[bug]}): ${allCases().length} problems, ${untouched} untouched, ${measurable} measurable, ${rejected} rejected, ${faint.length} faint`,
    );
    for (const line of faint) t.diagnostic(`  faint: ${line}`);
    assert.deepEqual(slipped, [], `measurable but accepted (seed ${SEED})`);
    assert.ok(measurable > 0, 'the bug shows somewhere');
  });
}
