/**
 * The precision rule (docs/precision.md): the one judge of every decode result, in the tests,
 * `flashmla check`, the demo and the benchmark's row check. Its bounds follow from the arithmetic
 * of a tensor-core kernel, which rounds the softmax probabilities P to the input dtype before
 * P·V, so they scale with what that rounding can do on the data at hand instead of being fixed:
 *
 * 1. out, each element: |a − r| ≤ ε·(max(|r|, φ) + A_ic) + 2·σ·B_i·A_ic,
 *    A_ic = Σ_j max(P_ij, φ/Σp)·|V_jc| (rounding out twice costs ≤ ε·|r|, rounding P ≤ ε/2·A_ic;
 *    φ, the dtype's smallest normal, is where rounding stops being relative: it matters for fp16
 *    only); scores off by up to σ·B_i (the float32 score error lse admits, below) move each P_ij
 *    by up to 2·σ·B_i·P_ij, hence the last term; a row with nothing to attend (lse +inf) must be
 *    exactly 0;
 * 2. out, each row of 512: 1 − 2·Σa·r / Σ(a² + r²) ≤ 2e-5 (skipped when Σr² < 1e-12, or the
 *    row's rms is below φ);
 * 3. out, the whole tensor: the same ≤ 5e-6 (same skips);
 * 4. lse, each element: |a − r| ≤ max(1e-6, 8.01/65536·|r|, σ·B_i), σ = 2^-20,
 *    B_i = scale·‖q_i‖·max_j ‖k_j‖ (float32 scores err in proportion to the scores, not to lse);
 * 5. Inf and NaN exactly where the reference has them.
 */

import { HEAD_DIM_V } from '../config.js';
import { DtypeError, ShapeError } from '../errors.js';
import type { HostDecodeInputs } from '../reference/problem.js';
import { type ErrorScales, referenceDecode, SMALLEST_NORMAL } from '../reference/reference.js';
import { halfDecodeTable } from '../tensor/half.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import { formatShape } from '../tensor/tensor.js';

/** The rule's numbers. */
export const PRECISION_RULE = Object.freeze({
  /** ε of out's dtype: 2^-7 for bf16 (twice its unit roundoff), 2^-10 for fp16. */
  epsilon: Object.freeze({ bf16: 2 ** -7, fp16: 2 ** -10 }),
  rowCosine: 2e-5,
  tensorCosine: 5e-6,
  /** Below this Σr² there is no angle to measure: the cosine checks skip (so do they below φ). */
  cosineFloor: 1e-12,
  lseAbsolute: 1e-6,
  lseRelative: 8.01 / 65536,
  /**
   * σ: times B_i, the float32 score error a kernel may carry, into lse (σ·B_i) and into out
   * (2·σ·B_i·A_ic).
   */
  scoreError: 2 ** -20,
});

/** The reference a result is judged against: its outputs and the scales of the bounds. */
export interface JudgedReference {
  out: HostTensor;
  lse: HostTensor;
  errorScales: ErrorScales;
}

/** One check's outcome: the worst place it found and how many places broke their bound. */
export interface CheckOutcome {
  /** Largest error/bound ratio (the check holds where it is ≤ 1; Infinity where the bound is 0). */
  ratio: number;
  /** Where that ratio sits, e.g. `out[b=0, s=1, h=3, c=100]` or `out[b=0, s=1, h=3, :]`. */
  at: string;
  error: number;
  bound: number;
  /** For per-element checks, the values there. */
  got?: number;
  want?: number;
  /** Elements (or rows) beyond their bound. */
  beyond: number;
}

export interface PrecisionReport {
  ok: boolean;
  element: CheckOutcome;
  row: CheckOutcome;
  tensor: CheckOutcome;
  lse: CheckOutcome;
  /** Inf or NaN where the reference has none, or the reverse: never excused. */
  misplaced: number;
  /** The first misplaced value, if any. */
  firstMisplaced: string;
  /** Largest |a − r| over out's finite elements, and over lse's. */
  outMaxAbsError: number;
  lseMaxAbsError: number;
  /** One line per failed check, naming its worst element, error and bound. */
  failures: string[];
}

export interface Verdict {
  ok: boolean;
  report: PrecisionReport;
  /** One line: the worst error/bound ratio of each check, and the failures if any. */
  summary: string;
}

/**
 * Judges a decode result against the float64 reference (computed here unless given, with its
 * error scales).
 */
export function judgeDecode(
  actual: { out: HostTensor; lse: HostTensor },
  inputs: HostDecodeInputs,
  reference: JudgedReference = referenceDecode(inputs, { errorScales: true }),
): Verdict {
  const report = comparePrecision(actual, reference);
  return { ok: report.ok, report, summary: summarize(report) };
}

/** The rule itself, against any reference that carries error scales. */
export function comparePrecision(
  actual: { out: HostTensor; lse: HostTensor },
  reference: JudgedReference,
): PrecisionReport {
  const rule = PRECISION_RULE;
  const dtype = reference.out.dtype;
  if (dtype !== 'bf16' && dtype !== 'fp16')
    throw new DtypeError('reference.out', 'bf16 or fp16 (the input dtype)', dtype);
  for (const name of ['out', 'lse'] as const) {
    const [got, want] = [formatShape(actual[name].shape), formatShape(reference[name].shape)];
    if (got !== want) throw new ShapeError(`actual.${name}`, `the reference's shape ${want}`, got);
  }
  const epsilon = rule.epsilon[dtype];
  const smallestNormal = SMALLEST_NORMAL[dtype];
  // Cosines measure relative error: none where the reference's rms is below φ either.
  const rowCosineFloor = Math.max(rule.cosineFloor, HEAD_DIM_V * smallestNormal ** 2);
  const { absWeightedV, absWeightedVRows, scoreMagnitude } = reference.errorScales;
  const element = new Worst();
  const row = new Worst();
  const tensor = new Worst();
  const lse = new Worst();
  let misplaced = 0;
  let firstMisplaced = '';

  const readActual = rowReader(actual.out);
  const readReference = rowReader(reference.out);
  const a = new Float64Array(HEAD_DIM_V);
  const r = new Float64Array(HEAD_DIM_V);
  const numel = reference.out.numel;
  const outAt = (e: number) => `out${outIndex(reference.out.shape, e)}`;
  let outMaxAbsError = 0;
  let dot = 0;
  let norms = 0;
  let referenceNorm = 0;
  const [, seqlenQ, numHeadsQ] = reference.out.shape;
  const lseR = values(reference.lse);
  for (let base = 0; base < numel; base += HEAD_DIM_V) {
    // A row with nothing to attend (lse +inf) must be exactly 0: its bound is 0.
    const rowIndex = base / HEAD_DIM_V;
    readActual(rowIndex, a);
    readReference(rowIndex, r);
    const s = Math.floor(rowIndex / numHeadsQ) % seqlenQ;
    const bh = Math.floor(rowIndex / (numHeadsQ * seqlenQ)) * numHeadsQ + (rowIndex % numHeadsQ);
    const lseAtRow = bh * seqlenQ + s;
    const attends = lseR[lseAtRow] !== Number.POSITIVE_INFINITY;
    // The relative weight error that score errors of up to σ·B_i can cause.
    const scoreSlack = 2 * rule.scoreError * scoreMagnitude[lseAtRow];
    // Where A of element e sits: absWeightedV[e + shift] (see ErrorScales.absWeightedVRows).
    const shift = absWeightedVRows ? absWeightedVRows[rowIndex] * HEAD_DIM_V - base : 0;
    let rowDot = 0;
    let rowNorms = 0;
    let rowReferenceNorm = 0;
    let rowFinite = true;
    for (let e = base; e < base + HEAD_DIM_V; e++) {
      const got = a[e - base];
      const want = r[e - base];
      if (!Number.isFinite(want) || !Number.isFinite(got)) {
        if (!sameNonFinite(got, want) && misplaced++ === 0)
          firstMisplaced = `${outAt(e)}: got ${got}, want ${want}`;
        rowFinite = false;
        continue;
      }
      const error = Math.abs(got - want);
      outMaxAbsError = Math.max(outMaxAbsError, error);
      const weightedV = absWeightedV[e + shift];
      const bound = attends
        ? epsilon * (Math.max(Math.abs(want), smallestNormal) + weightedV) + scoreSlack * weightedV
        : 0;
      element.add(error, bound, e, got, want);
      rowDot += got * want;
      rowNorms += got * got + want * want;
      rowReferenceNorm += want * want;
    }
    if (rowFinite && rowReferenceNorm >= rowCosineFloor)
      row.add(cosineDistance(rowDot, rowNorms), rule.rowCosine, base);
    dot += rowDot;
    norms += rowNorms;
    referenceNorm += rowReferenceNorm;
  }
  if (referenceNorm >= Math.max(rule.cosineFloor, numel * smallestNormal ** 2))
    tensor.add(cosineDistance(dot, norms), rule.tensorCosine, 0);

  const lseA = values(actual.lse);
  const lseAt = (e: number) => `lse${lseIndex(reference.lse.shape, e)}`;
  let lseMaxAbsError = 0;
  for (let e = 0; e < lseR.length; e++) {
    const got = lseA[e];
    const want = lseR[e];
    if (!Number.isFinite(want) || !Number.isFinite(got)) {
      if (!sameNonFinite(got, want) && misplaced++ === 0)
        firstMisplaced = `${lseAt(e)}: got ${got}, want ${want}`;
      continue;
    }
    const error = Math.abs(got - want);
    lseMaxAbsError = Math.max(lseMaxAbsError, error);
    const bound = Math.max(
      rule.lseAbsolute,
      rule.lseRelative * Math.abs(want),
      rule.scoreError * scoreMagnitude[e],
    );
    lse.add(error, bound, e, got, want);
  }

  const outcomes = {
    element: element.outcome(outAt),
    row: row.outcome((e) => outAt(e).replace(/c=0\]$/, 'c=:]')),
    tensor: tensor.outcome(() => 'out (whole tensor)'),
    lse: lse.outcome(lseAt),
  };
  const failures: string[] = [];
  if (misplaced > 0)
    failures.push(
      `${firstMisplaced}; Inf/NaN must sit exactly where the reference has them (${misplaced} misplaced)`,
    );
  if (outcomes.element.beyond > 0)
    failures.push(describeFailure(outcomes.element, 'error', 'elements of out'));
  if (outcomes.row.beyond > 0)
    failures.push(describeFailure(outcomes.row, 'cosine distance', 'rows of out'));
  if (outcomes.tensor.beyond > 0)
    failures.push(describeFailure(outcomes.tensor, 'cosine distance', 'tensors'));
  if (outcomes.lse.beyond > 0)
    failures.push(describeFailure(outcomes.lse, 'error', 'elements of lse'));
  return {
    ok: failures.length === 0,
    ...outcomes,
    misplaced,
    firstMisplaced,
    outMaxAbsError,
    lseMaxAbsError,
    failures,
  };
}

/** The worst error/bound ratio of one check, and how many places broke their bound. */
class Worst {
  private ratio = 0;
  private index = -1;
  private error = 0;
  private bound = 0;
  private got: number | undefined;
  private want: number | undefined;
  private beyond = 0;

  add(error: number, bound: number, index: number, got?: number, want?: number): void {
    let ratio = error / bound;
    // 0/0 is a match; x/0 and anything over a NaN bound are not.
    if (!(ratio >= 0)) ratio = error === 0 ? 0 : Number.POSITIVE_INFINITY;
    if (ratio > 1) this.beyond++;
    if (ratio > this.ratio || this.index < 0) {
      this.ratio = ratio;
      this.index = index;
      this.error = error;
      this.bound = bound;
      this.got = got;
      this.want = want;
    }
  }

  outcome(at: (index: number) => string): CheckOutcome {
    const { ratio, error, bound, got, want, beyond } = this;
    return { ratio, at: this.index < 0 ? '' : at(this.index), error, bound, got, want, beyond };
  }
}

function cosineDistance(dot: number, norms: number): number {
  return norms === 0 ? 0 : 1 - (2 * dot) / norms;
}

function sameNonFinite(got: number, want: number): boolean {
  return Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want));
}

/** `[b=.., s=.., h=.., c=..]` of flat index e of a [b, s_q, h_q, 512] tensor. */
function outIndex(shape: readonly number[], e: number): string {
  const [, seqlenQ, numHeadsQ, width] = shape;
  const c = e % width;
  const h = Math.floor(e / width) % numHeadsQ;
  const s = Math.floor(e / (width * numHeadsQ)) % seqlenQ;
  const b = Math.floor(e / (width * numHeadsQ * seqlenQ));
  return `[b=${b}, s=${s}, h=${h}, c=${c}]`;
}

/** `[b=.., h=.., s=..]` of flat index e of a [b, h_q, s_q] tensor. */
function lseIndex(shape: readonly number[], e: number): string {
  const [, numHeadsQ, seqlenQ] = shape;
  const s = e % seqlenQ;
  const h = Math.floor(e / seqlenQ) % numHeadsQ;
  const b = Math.floor(e / (seqlenQ * numHeadsQ));
  return `[b=${b}, h=${h}, s=${s}]`;
}

function describeFailure(outcome: CheckOutcome, measure: string, places: string): string {
  const values = outcome.got === undefined ? '' : ` got ${outcome.got}, want ${outcome.want},`;
  return `${outcome.at}:${values} ${measure} ${outcome.error.toExponential(3)} > bound ${outcome.bound.toExponential(3)} (${formatRatio(outcome.ratio)}x); ${outcome.beyond} ${places} beyond their bound`;
}

/** An error/bound ratio for people: 3 digits, or 2 in exponent form when tiny. */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio) || ratio === 0) return String(ratio);
  return ratio < 0.01 ? ratio.toExponential(1) : ratio.toPrecision(3);
}

function summarize(report: PrecisionReport): string {
  const ratios = `worst error/bound: element ${formatRatio(report.element.ratio)}, row ${formatRatio(report.row.ratio)}, tensor ${formatRatio(report.tensor.ratio)}, lse ${formatRatio(report.lse.ratio)}`;
  return report.ok ? ratios : `${report.failures.length} checks failed; ${ratios}`;
}

/**
 * Reads row `row` (512 values, row-major) of out into `into`. A contiguous 16-bit tensor is decoded
 * row by row, so judging a large result allocates no copy of it (on a large output the fresh
 * memory of a whole decoded copy cost more than the comparison itself); any other tensor is
 * copied once.
 */
function rowReader(tensor: HostTensor): (row: number, into: Float64Array) => void {
  if (tensor.isContiguous() && (tensor.dtype === 'bf16' || tensor.dtype === 'fp16')) {
    const table = halfDecodeTable(tensor.dtype);
    const bits = tensor.data as Uint16Array;
    const offset = tensor.offset;
    return (row, into) => {
      const base = offset + row * HEAD_DIM_V;
      for (let c = 0; c < HEAD_DIM_V; c++) into[c] = table[bits[base + c]];
    };
  }
  const all = values(tensor);
  return (row, into) => into.set(all.subarray(row * HEAD_DIM_V, (row + 1) * HEAD_DIM_V));
}

/** All elements in row-major order as numbers (no copy of a contiguous float32 tensor). */
function values(tensor: HostTensor): Float32Array | Float64Array {
  if (tensor.isContiguous() && tensor.dtype === 'float32')
    return tensor.data.subarray(tensor.offset, tensor.offset + tensor.numel) as Float32Array;
  return tensor.toFloat64Array();
}
