/**
 * A CPU model of a tensor-core decode kernel, with one bug planted on request: what the mutation
 * suite judges to show that the precision rule passes a correct kernel and fails a faulty one.
 *
 * The arithmetic is FlashMLA's: each query row walks its attended keys in 64-token blocks; per
 * block, float32 scores, the online softmax (running max, float32 sum of the unrounded P, the
 * accumulator rescaled when the max grows), P rounded to the input dtype, O += P·V in float32;
 * at the end out = O / sum rounded to the dtype and lse = max + ln(sum) in float32. With
 * `exact`, the same walk in float64 and without any rounding: a bug's own effect, free of the
 * noise that correct rounding adds.
 */
import { HEAD_DIM_K, HEAD_DIM_V, PAGE_BLOCK_SIZE } from '../../src/config.js';
import { type HostDecodeInputs, HostProblem } from '../../src/reference/problem.js';
import { roundToBf16, roundToFp16 } from '../../src/tensor/half.js';
import { encodeElement, HostTensor } from '../../src/tensor/host-tensor.js';

/** Faults a real kernel could have, one at a time. */
export const BUGS = {
  'drop-block': 'the last 64-token block of each sequence is skipped',
  'lse-log2': 'lse is returned in log2 units (the final x ln 2 forgotten)',
  'head-mapping': 'q head h reads KV head h % h_kv instead of floor(h / (h_q / h_kv))',
  'v-slice': 'V is read from channels 64..575 instead of 0..511',
  'causal-off-by-one': 'a causal row also attends the next token',
  'p-fp8': 'P is rounded to fp8 (e4m3) instead of the input dtype, on every head',
  'p-fp8-one-head': 'P is rounded to fp8 (e4m3) on the last query head only',
  'no-rescale': 'the accumulator O is not rescaled when a block raises the running max',
  'scale-1pct': 'the softmax scale is 1% too large',
} as const;

export type Bug = keyof typeof BUGS;

export interface ModelOptions {
  bug?: Bug;
  /** float64 throughout, nothing rounded (out comes back as float32). */
  exact?: boolean;
}

export function decodeModel(
  inputs: HostDecodeInputs,
  { bug, exact = false }: ModelOptions = {},
): { out: HostTensor; lse: HostTensor } {
  const problem = new HostProblem(inputs);
  const { batch, seqlenQ, numHeadsQ, numHeadsKv, groupSize, causal } = problem;
  const outDtype = exact ? 'float32' : inputs.q.dtype;
  const out = HostTensor.zeros(outDtype, [batch, seqlenQ, numHeadsQ, HEAD_DIM_V]);
  const lse = HostTensor.zeros('float32', [batch, numHeadsQ, seqlenQ]);
  const roundToDtype = inputs.q.dtype === 'fp16' ? roundToFp16 : roundToBf16;
  const scale = bug === 'scale-1pct' ? inputs.softmaxScale * 1.01 : inputs.softmaxScale;
  const query = new Float64Array(HEAD_DIM_K);
  const row = new Float64Array(HEAD_DIM_V);

  for (let i = 0; i < batch; i++) {
    const length = problem.lengths[i];
    const keys = Array.from({ length: numHeadsKv }, (_, kvHead) =>
      problem.readKeys(i, kvHead, 0, length, new Float64Array(length * HEAD_DIM_K)),
    );
    const lastBlock = Math.floor((length - 1) / PAGE_BLOCK_SIZE) * PAGE_BLOCK_SIZE;
    for (let s = 0; s < seqlenQ; s++) {
      let count = problem.attendedKeys(length, s);
      if (bug === 'causal-off-by-one' && causal) count = Math.min(count + 1, length);
      for (let head = 0; head < numHeadsQ; head++) {
        const kvHead = bug === 'head-mapping' ? head % numHeadsKv : Math.floor(head / groupSize);
        const fp8 = bug === 'p-fp8' || (bug === 'p-fp8-one-head' && head === numHeadsQ - 1);
        const roundP = fp8 ? roundToE4m3 : exact ? identity : roundToDtype;
        problem.readQuery(i, s, head, query);
        const rowLse = attendBlocks(query, keys[kvHead], count, scale, row, {
          exact,
          roundP,
          skipBlock: bug === 'drop-block' ? lastBlock : -1,
          rescale: bug !== 'no-rescale',
          vOffset: bug === 'v-slice' ? HEAD_DIM_K - HEAD_DIM_V : 0,
        });
        const base = out.elementOffset([i, s, head, 0]);
        for (let c = 0; c < HEAD_DIM_V; c++) out.data[base + c] = encodeElement(outDtype, row[c]);
        lse.set(bug === 'lse-log2' ? rowLse / Math.LN2 : rowLse, i, head, s);
      }
    }
  }
  return { out, lse };
}

/**
 * One query row over the first `count` keys, a 64-token block at a time: writes out (O / sum,
 * unrounded) into `out` and returns lse; +inf and zeros where no key was visited.
 */
function attendBlocks(
  query: Float64Array,
  keys: Float64Array,
  count: number,
  scale: number,
  out: Float64Array,
  options: {
    exact: boolean;
    roundP: (p: number) => number;
    skipBlock: number;
    rescale: boolean;
    vOffset: number;
  },
): number {
  const f = options.exact ? identity : Math.fround;
  const scaled = f(scale);
  const scores = new Float64Array(PAGE_BLOCK_SIZE);
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  out.fill(0);
  for (let begin = 0; begin < count; begin += PAGE_BLOCK_SIZE) {
    if (begin === options.skipBlock) continue;
    const end = Math.min(begin + PAGE_BLOCK_SIZE, count);
    let blockMax = Number.NEGATIVE_INFINITY;
    for (let j = begin; j < end; j++) {
      const row = j * HEAD_DIM_K;
      let dot = 0;
      // Products of two 16-bit values are exact in float32; the sum is rounded at every step.
      if (options.exact) for (let c = 0; c < HEAD_DIM_K; c++) dot += query[c] * keys[row + c];
      else for (let c = 0; c < HEAD_DIM_K; c++) dot = Math.fround(dot + query[c] * keys[row + c]);
      scores[j - begin] = f(dot * scaled);
      blockMax = Math.max(blockMax, scores[j - begin]);
    }
    if (blockMax > max) {
      const factor = f(Math.exp(f(max - blockMax)));
      sum = f(sum * factor);
      if (options.rescale) for (let c = 0; c < HEAD_DIM_V; c++) out[c] = f(out[c] * factor);
      max = blockMax;
    }
    for (let j = begin; j < end; j++) {
      const p = f(Math.exp(f(scores[j - begin] - max)));
      sum = f(sum + p);
      const rounded = options.roundP(p);
      const v = j * HEAD_DIM_K + options.vOffset;
      if (options.exact) for (let c = 0; c < HEAD_DIM_V; c++) out[c] += rounded * keys[v + c];
      else
        for (let c = 0; c < HEAD_DIM_V; c++) out[c] = Math.fround(out[c] + rounded * keys[v + c]);
    }
  }
  if (sum === 0) {
    out.fill(0);
    return Number.POSITIVE_INFINITY;
  }
  for (let c = 0; c < HEAD_DIM_V; c++) out[c] = f(out[c] / sum);
  return f(max + f(Math.log(sum)));
}

function identity(x: number): number {
  return x;
}

/** Round to nearest even on fp8 e4m3: 3 mantissa bits, steps of 2^-9 below 2^-6, max 448. */
export function roundToE4m3(x: number): number {
  const magnitude = Math.abs(x);
  if (magnitude === 0 || !Number.isFinite(magnitude)) return x;
  let exponent = Math.max(Math.floor(Math.log2(magnitude)), -6);
  if (2 ** (exponent + 1) <= magnitude) exponent++; // log2 rounding at powers of two
  const step = 2 ** (exponent - 3);
  const scaled = magnitude / step;
  let steps = Math.floor(scaled);
  const fraction = scaled - steps;
  if (fraction > 0.5 || (fraction === 0.5 && steps % 2 === 1)) steps++;
  return Math.sign(x) * Math.min(steps * step, 448);
}
