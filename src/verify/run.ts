/**
 * Runs a decode problem through the public API: prepareDecode, what the checks, the benchmark
 * and the tests all do, and runAndCheck, what `flashmla demo` and `flashmla check` do for each
 * configuration (run it on a backend and judge it against the float64 reference).
 */
import { flashMlaWithKvcache, getMlaMetadata } from '../api/decode.js';
import type { Backend } from '../backend/backend.js';
import type { MlaMetadata } from '../backend/metadata.js';
import { HEAD_DIM_V } from '../config.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { judgeDecode, type Verdict } from './precision.js';
import type { Problem } from './problems.js';

/** The inputs of one decode call, wherever they live. */
export interface DecodeInputs {
  q: Tensor;
  kCache: Tensor;
  blockTable: Tensor;
  cacheSeqlens: Tensor;
  softmaxScale: number;
  causal: boolean;
}

export interface PreparedDecode {
  /** The schedule of the inputs' lengths; whoever prepared the decode disposes it. */
  metadata: MlaMetadata;
  /** One flashMlaWithKvcache call into the preallocated outputs. */
  decode(): void;
}

/**
 * Metadata for the inputs' lengths (unless given), computed once as a model does per decode
 * step, and a decode call into `out` and `lse` with it, run as often as a model runs layers.
 */
export function prepareDecode(
  inputs: DecodeInputs,
  outputs: { out: Tensor; lse: Tensor },
  metadata?: MlaMetadata,
): PreparedDecode {
  const { q, kCache, blockTable, cacheSeqlens, softmaxScale, causal } = inputs;
  const [, seqlenQ, numHeadsQ] = q.shape;
  const numHeadsKv = kCache.shape[2];
  const schedule =
    metadata ?? getMlaMetadata(cacheSeqlens, (seqlenQ * numHeadsQ) / numHeadsKv, numHeadsKv);
  const options = { softmaxScale, causal, out: outputs.out, lse: outputs.lse };
  return {
    metadata: schedule,
    decode: () => {
      flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, schedule, options);
    },
  };
}

export interface CheckedRun {
  verdict: Verdict;
  /** Median time of one decode call (metadata excluded), in milliseconds. */
  medianMs: number;
  out: HostTensor;
  lse: HostTensor;
}

export function runAndCheck(
  backend: Backend,
  problem: Problem,
  timing = { warmup: 1, repeats: 3 },
): CheckedRun {
  const [batch, seqlenQ, numHeadsQ] = problem.q.shape;
  const owned: Tensor[] = [];
  const place = (tensor: HostTensor) => {
    const placed = backend.upload(tensor);
    if (placed !== tensor) owned.push(placed);
    return placed;
  };
  const q = place(problem.q);
  const kCache = place(problem.kCache);
  const blockTable = place(problem.blockTable);
  const cacheSeqlens = place(problem.cacheSeqlens);
  const out = backend.empty(problem.q.dtype, [batch, seqlenQ, numHeadsQ, HEAD_DIM_V]);
  const lse = backend.empty('float32', [batch, numHeadsQ, seqlenQ]);
  owned.push(out, lse);
  const { metadata, decode } = prepareDecode(
    { ...problem, q, kCache, blockTable, cacheSeqlens },
    { out, lse },
  );
  try {
    const times = backend.time(decode, timing);
    const actual = { out: out.toHostSync(), lse: lse.toHostSync() };
    return { verdict: judgeDecode(actual, problem), medianMs: median(times), ...actual };
  } finally {
    metadata.dispose();
    for (const tensor of owned) (tensor as Partial<{ dispose(): void }>).dispose?.();
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
