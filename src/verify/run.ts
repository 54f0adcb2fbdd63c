/**
 * Runs a host problem on any backend through the public API and checks it against the float64
 * reference: what `flashmla demo` and `flashmla check` do for each configuration.
 */
import { flashMlaWithKvcache, getMlaMetadata } from '../api/decode.js';
import type { Backend } from '../backend/backend.js';
import { HEAD_DIM_V } from '../config.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { judgeDecode, type Verdict } from './precision.js';
import type { Problem } from './problems.js';

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
  const numHeadsKv = problem.kCache.shape[2];
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
  const metadata = getMlaMetadata(cacheSeqlens, (seqlenQ * numHeadsQ) / numHeadsKv, numHeadsKv);
  try {
    const decode = () =>
      flashMlaWithKvcache(
        q,
        kCache,
        blockTable,
        cacheSeqlens,
        HEAD_DIM_V,
        metadata.tileSchedulerMetadata,
        metadata.numSplits,
        {
          softmaxScale: problem.softmaxScale,
          causal: problem.causal,
          out,
          lse,
        },
      );
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
