/**
 * The float64 reference: the oracle every backend and test is checked against. It computes each
 * output row directly from the definition in docs/semantics.md, reading only the keys that row attends,
 * so NaN/Inf in unattended cache rows cannot leak into it.
 *
 * On request it also gives, in the same pass, the two scales the precision rule
 * (src/verify/precision.ts) sizes its bounds by: what rounding P can move each out element by,
 * and how large the scores a kernel computes in float32 can be.
 */
import { HEAD_DIM_K, HEAD_DIM_V } from '../config.js';
import { encodeElement, type HostTensor } from '../tensor/host-tensor.js';
import { type HostDecodeInputs, HostProblem } from './problem.js';

/**
 * The smallest normal value φ of each 16-bit dtype. Rounding to the dtype errs by at most half a
 * unit in the last place, u·max(|x|, φ) with u = 2^-8 (bf16) or 2^-11 (fp16): below φ the step
 * stops shrinking with |x|. That matters for fp16 (φ = 6.1e-5) and never for bf16.
 */
export const SMALLEST_NORMAL = { bf16: 2 ** -126, fp16: 2 ** -14 } as const;

/** What the precision rule scales its bounds by; 0 on rows with nothing to attend. */
export interface ErrorScales {
  /**
   * A_ic = Σ_j max(P_ij, φ·e^(m_i − lse_i))·|V_jc|, [b, s_q, h_q, 512] row-major (out's shape):
   * what rounding P to the dtype can move out by, per unit of u. A kernel rounds p_j =
   * e^(s_j − m) ≤ 1 (m a running max ≤ the row's max m_i) and divides by Σp = e^(lse_i − m_i),
   * hence the floor φ·e^(m_i − lse_i) on the normalised P.
   */
  absWeightedV: Float64Array;
  /**
   * Where present, A is stored once per group of out rows that share it: out row r (of b·s_q·h_q)
   * takes row absWeightedVRows[r] of absWeightedV, which is then [groups, 512]. The bounds for the
   * GPU oracle share one row per sequence and KV head (and a zero row for rows with nothing to
   * attend), so judging a large result needs no array as large as out for them.
   */
  absWeightedVRows?: Int32Array;
  /** B_i = softmaxScale·‖q_i‖₂·max_j ‖k_j‖₂ over the keys row i attends, [b, h_q, s_q] (lse's shape). */
  scoreMagnitude: Float64Array;
}

/** A at flat index e of out ([b, s_q, h_q, 512] row-major), whichever way the scales store it. */
export function absWeightedVAt(scales: ErrorScales, e: number): number {
  if (!scales.absWeightedVRows) return scales.absWeightedV[e];
  const row = Math.floor(e / HEAD_DIM_V);
  return scales.absWeightedV[scales.absWeightedVRows[row] * HEAD_DIM_V + (e - row * HEAD_DIM_V)];
}

export interface ReferenceResult {
  /** [b, s_q, h_q, 512] in q's dtype. */
  out: HostTensor;
  /** [b, h_q, s_q] float32, natural log; +Infinity on rows with nothing to attend. */
  lse: HostTensor;
  /** The unrounded outputs, [b, s_q, h_q, 512] row-major. */
  outExact: Float64Array;
  /** Present when asked for: the scales of the precision rule. */
  errorScales?: ErrorScales;
}

export interface ReferenceOptions {
  /** Also compute the precision rule's error scales (one more accumulation beside out). */
  errorScales?: boolean;
}

export function referenceDecode(
  inputs: HostDecodeInputs,
  options: { errorScales: true },
): ReferenceResult & { errorScales: ErrorScales };
export function referenceDecode(
  inputs: HostDecodeInputs,
  options?: ReferenceOptions,
): ReferenceResult;
export function referenceDecode(
  inputs: HostDecodeInputs,
  options: ReferenceOptions = {},
): ReferenceResult {
  const problem = new HostProblem(inputs);
  const { batch, seqlenQ, numHeadsQ, numHeadsKv, groupSize, softmaxScale } = problem;
  const { out, lse } = problem.allocateOutputs();
  const outExact = new Float64Array(out.numel);
  const errorScales = options.errorScales
    ? {
        absWeightedV: new Float64Array(out.numel),
        scoreMagnitude: new Float64Array(lse.numel),
      }
    : undefined;
  const query = new Float64Array(HEAD_DIM_K);
  const smallestNormal = SMALLEST_NORMAL[inputs.q.dtype === 'fp16' ? 'fp16' : 'bf16'];

  for (let i = 0; i < batch; i++) {
    const length = problem.lengths[i];
    const keys = new Float64Array(length * HEAD_DIM_K);
    for (let kvHead = 0; kvHead < numHeadsKv; kvHead++) {
      problem.readKeys(i, kvHead, 0, length, keys);
      // The largest key norm among keys 0..j, for B of rows attending a prefix.
      const maxKeyNorm = errorScales ? prefixMaxNorms(keys, length) : undefined;
      for (let s = 0; s < seqlenQ; s++) {
        const count = problem.attendedKeys(length, s);
        for (let g = 0; g < groupSize; g++) {
          const head = kvHead * groupSize + g;
          const outBase = ((i * seqlenQ + s) * numHeadsQ + head) * HEAD_DIM_V;
          let rowLse = Number.POSITIVE_INFINITY; // out (and A, B) stay 0
          if (count > 0) {
            problem.readQuery(i, s, head, query);
            rowLse = attendRow(
              query,
              keys,
              count,
              softmaxScale,
              outExact,
              outBase,
              errorScales && { absWeightedV: errorScales.absWeightedV, smallestNormal },
            );
            if (errorScales && maxKeyNorm) {
              errorScales.scoreMagnitude[(i * numHeadsQ + head) * seqlenQ + s] =
                softmaxScale * norm(query, 0, HEAD_DIM_K) * maxKeyNorm[count - 1];
            }
          }
          lse.set(rowLse, i, head, s);
        }
      }
    }
  }
  const outData = out.data;
  for (let e = 0; e < outExact.length; e++) outData[e] = encodeElement(out.dtype, outExact[e]);
  return { out, lse, outExact, errorScales };
}

/**
 * Attends one query row to the first `count` rows of `keys` ([count][576], V = first 512
 * channels) in float64: writes the softmax-weighted sum of V into out[outBase..+512] and returns
 * the row's lse; with `scales`, also adds A (see ErrorScales) into absWeightedV there. Also the
 * row math of the CPU backend's pieces.
 */
export function attendRow(
  query: Float64Array,
  keys: Float64Array,
  count: number,
  scale: number,
  out: Float64Array,
  outBase = 0,
  scales?: { absWeightedV: Float64Array; smallestNormal: number },
): number {
  const scores = new Float64Array(count);
  // Four keys per pass over the query (and below over out and A): each sum still adds its terms
  // one at a time in key and channel order, so the results are those of one key at a time, bit
  // for bit, with a quarter of the loads and stores of the accumulators.
  const quads = count - (count % 4);
  for (let j = 0; j < quads; j += 4) {
    const [r0, r1, r2, r3] = quadRows(j);
    let [d0, d1, d2, d3] = [0, 0, 0, 0];
    for (let c = 0; c < HEAD_DIM_K; c++) {
      const x = query[c];
      d0 += x * keys[r0 + c];
      d1 += x * keys[r1 + c];
      d2 += x * keys[r2 + c];
      d3 += x * keys[r3 + c];
    }
    scores[j] = d0 * scale;
    scores[j + 1] = d1 * scale;
    scores[j + 2] = d2 * scale;
    scores[j + 3] = d3 * scale;
  }
  for (let j = quads; j < count; j++) {
    let dot = 0;
    const row = j * HEAD_DIM_K;
    for (let c = 0; c < HEAD_DIM_K; c++) dot += query[c] * keys[row + c];
    scores[j] = dot * scale;
  }
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < count; j++) max = Math.max(max, scores[j]); // Math.max propagates NaN, as the contract wants
  let sum = 0;
  for (let j = 0; j < count; j++) sum += Math.exp(scores[j] - max);
  const lse = max + Math.log(sum);
  const floor = scales ? scales.smallestNormal * Math.exp(max - lse) : 0;
  const weights = new Float64Array(count);
  for (let j = 0; j < count; j++) weights[j] = Math.exp(scores[j] - lse);
  for (let j = 0; j < quads; j += 4) {
    const [r0, r1, r2, r3] = quadRows(j);
    const [w0, w1, w2, w3] = [weights[j], weights[j + 1], weights[j + 2], weights[j + 3]];
    for (let c = 0; c < HEAD_DIM_V; c++) {
      const o = outBase + c;
      out[o] =
        out[o] + w0 * keys[r0 + c] + w1 * keys[r1 + c] + w2 * keys[r2 + c] + w3 * keys[r3 + c];
    }
    if (scales) {
      const a = scales.absWeightedV;
      const [a0, a1, a2, a3] = [
        Math.max(w0, floor),
        Math.max(w1, floor),
        Math.max(w2, floor),
        Math.max(w3, floor),
      ];
      for (let c = 0; c < HEAD_DIM_V; c++) {
        const o = outBase + c;
        a[o] =
          a[o] +
          a0 * Math.abs(keys[r0 + c]) +
          a1 * Math.abs(keys[r1 + c]) +
          a2 * Math.abs(keys[r2 + c]) +
          a3 * Math.abs(keys[r3 + c]);
      }
    }
  }
  for (let j = quads; j < count; j++) {
    const weight = weights[j];
    const row = j * HEAD_DIM_K;
    for (let c = 0; c < HEAD_DIM_V; c++) out[outBase + c] += weight * keys[row + c];
    if (scales) {
      const absWeight = Math.max(weight, floor);
      for (let c = 0; c < HEAD_DIM_V; c++)
        scales.absWeightedV[outBase + c] += absWeight * Math.abs(keys[row + c]);
    }
  }
  return lse;
}

/** Where keys j..j+3 start in a [count][576] array. */
function quadRows(j: number): [number, number, number, number] {
  const r0 = j * HEAD_DIM_K;
  return [r0, r0 + HEAD_DIM_K, r0 + 2 * HEAD_DIM_K, r0 + 3 * HEAD_DIM_K];
}

function norm(values: Float64Array, begin: number, count: number): number {
  let sum = 0;
  for (let c = begin; c < begin + count; c++) sum += values[c] * values[c];
  return Math.sqrt(sum);
}

/** maxima[j] = max over keys 0..j of ‖k‖₂ (NaN once a key holds NaN). */
function prefixMaxNorms(keys: Float64Array, count: number): Float64Array {
  const maxima = new Float64Array(count);
  let max = 0;
  for (let j = 0; j < count; j++) {
    max = Math.max(max, norm(keys, j * HEAD_DIM_K, HEAD_DIM_K));
    maxima[j] = max;
  }
  return maxima;
}
