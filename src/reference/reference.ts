/**
 * The float64 reference: the oracle every backend and test is checked against. It computes each
 * output row directly from the definition in docs/semantics.md, reading only the keys that row attends,
 * so NaN/Inf in unattended cache rows cannot leak into it.
 *
 * The low-precision variant mimics what a tensor-core kernel does (float32 scores, P rounded to
 * bf16/fp16 before P·V); the precision rule uses it to set tolerances for large-magnitude inputs.
 */
import { HEAD_DIM_K, HEAD_DIM_V } from '../config.js';
import { roundToBf16, roundToFp16 } from '../tensor/half.js';
import { encodeElement, type HostTensor } from '../tensor/host-tensor.js';
import { type HostDecodeInputs, HostProblem } from './problem.js';

export type ReferencePrecision = 'float64' | 'low';

export interface ReferenceResult {
  /** [b, s_q, h_q, 512] in q's dtype. */
  out: HostTensor;
  /** [b, h_q, s_q] float32, natural log; +Infinity on rows with nothing to attend. */
  lse: HostTensor;
  /** The unrounded outputs, [b, s_q, h_q, 512] row-major. */
  outExact: Float64Array;
}

export function referenceDecode(
  inputs: HostDecodeInputs,
  precision: ReferencePrecision = 'float64',
): ReferenceResult {
  const problem = new HostProblem(inputs);
  const { batch, seqlenQ, numHeadsQ, numHeadsKv, groupSize } = problem;
  const { out, lse } = problem.allocateOutputs();
  const outExact = new Float64Array(out.numel);
  const query = new Float64Array(HEAD_DIM_K);
  const roundP = inputs.q.dtype === 'fp16' ? roundToFp16 : roundToBf16;
  const attend = precision === 'float64' ? attendRow : attendRowLowPrecision;

  for (let i = 0; i < batch; i++) {
    const length = problem.lengths[i];
    const keys = new Float64Array(length * HEAD_DIM_K);
    for (let kvHead = 0; kvHead < numHeadsKv; kvHead++) {
      problem.readKeys(i, kvHead, 0, length, keys);
      for (let s = 0; s < seqlenQ; s++) {
        const count = problem.attendedKeys(length, s);
        for (let g = 0; g < groupSize; g++) {
          const head = kvHead * groupSize + g;
          const outBase = ((i * seqlenQ + s) * numHeadsQ + head) * HEAD_DIM_V;
          let rowLse: number;
          if (count === 0) {
            rowLse = Number.POSITIVE_INFINITY; // out stays 0
          } else {
            problem.readQuery(i, s, head, query);
            rowLse = attend(query, keys, count, problem.softmaxScale, outExact, outBase, roundP);
          }
          lse.set(rowLse, i, head, s);
        }
      }
    }
  }
  const outData = out.data;
  for (let e = 0; e < outExact.length; e++) outData[e] = encodeElement(out.dtype, outExact[e]);
  return { out, lse, outExact };
}

/**
 * Attends one query row to the first `count` rows of `keys` ([count][576], V = first 512
 * channels) in float64: writes the softmax-weighted sum of V into out[outBase..+512] and returns
 * the row's lse. Also the row math of the CPU backend's pieces.
 */
export function attendRow(
  query: Float64Array,
  keys: Float64Array,
  count: number,
  scale: number,
  out: Float64Array,
  outBase = 0,
): number {
  const scores = new Float64Array(count);
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < count; j++) {
    let dot = 0;
    const row = j * HEAD_DIM_K;
    for (let c = 0; c < HEAD_DIM_K; c++) dot += query[c] * keys[row + c];
    scores[j] = dot * scale;
    max = Math.max(max, scores[j]); // Math.max propagates NaN, as the contract wants
  }
  let sum = 0;
  for (let j = 0; j < count; j++) sum += Math.exp(scores[j] - max);
  const lse = max + Math.log(sum);
  for (let j = 0; j < count; j++) {
    const weight = Math.exp(scores[j] - lse);
    const row = j * HEAD_DIM_K;
    for (let c = 0; c < HEAD_DIM_V; c++) out[outBase + c] += weight * keys[row + c];
  }
  return lse;
}

/**
 * Like a tensor-core kernel: scores accumulated in float32, softmax in float32, P rounded to the
 * input dtype before P·V, the sum of P and the output accumulated in float32.
 */
function attendRowLowPrecision(
  query: Float64Array,
  keys: Float64Array,
  count: number,
  scale: number,
  out: Float64Array,
  outBase: number,
  roundP: (value: number) => number,
): number {
  const f = Math.fround;
  const scores = new Float64Array(count);
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < count; j++) {
    let dot = 0;
    const row = j * HEAD_DIM_K;
    for (let c = 0; c < HEAD_DIM_K; c++) dot = f(dot + f(query[c] * keys[row + c]));
    scores[j] = f(dot * f(scale));
    max = Math.max(max, scores[j]);
  }
  let sum = 0;
  const acc = new Float64Array(HEAD_DIM_V);
  for (let j = 0; j < count; j++) {
    const p = f(Math.exp(f(scores[j] - max)));
    sum = f(sum + p);
    const pRounded = roundP(p);
    const row = j * HEAD_DIM_K;
    for (let c = 0; c < HEAD_DIM_V; c++) acc[c] = f(acc[c] + f(pRounded * keys[row + c]));
  }
  for (let c = 0; c < HEAD_DIM_V; c++) out[outBase + c] = f(acc[c] / sum);
  return f(max + Math.log(sum));
}
