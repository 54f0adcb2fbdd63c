/**
 * The benchmark's rows and how each is counted. The default is BENCHMARK.md's matrix (FlashMLA's
 * own decode benchmark), so our numbers line up with the FlashMLA table there row by row; the
 * counting is FlashMLA's too, so TFLOPS and GB/s compare.
 */
import { HEAD_DIM_K, HEAD_DIM_V } from '../../config.js';

export type BenchDtype = 'bf16' | 'fp16';

/** One row of the benchmark: one decode call shape. */
export interface BenchRowConfig {
  batch: number;
  /** Mean cache length (every length when `varlen` is false). */
  meanLength: number;
  numHeadsQ: number;
  numHeadsKv: number;
  seqlenQ: number;
  /** Lengths drawn from Normal(mean, mean/2) clamped to >= s_q, instead of all equal to mean. */
  varlen: boolean;
  causal: boolean;
  dtype: BenchDtype;
}

/** A grid of rows: every combination of the listed values. */
export interface MatrixSpec {
  batch: number;
  meanLengths: readonly number[];
  numHeadsQ: readonly number[];
  seqlensQ: readonly number[];
  varlen: readonly boolean[];
  causal: boolean;
  dtype: BenchDtype;
  numHeadsKv: number;
}

/** BENCHMARK.md's 48 rows. */
export const STANDARD_MATRIX: MatrixSpec = {
  batch: 128,
  meanLengths: [4096, 8192, 16384],
  numHeadsQ: [16, 32, 64, 128],
  seqlensQ: [1, 2],
  varlen: [false, true],
  causal: true,
  dtype: 'bf16',
  numHeadsKv: 1,
};

/** `--quick`: the shortest length at the memory-bound, mixed and compute-bound head counts. */
export const QUICK_MATRIX: MatrixSpec = {
  ...STANDARD_MATRIX,
  meanLengths: [4096],
  numHeadsQ: [16, 64, 128],
  varlen: [false],
};

/** The CPU backend computes in float64 on the host: the standard shapes would take hours. */
export const CPU_MATRIX: MatrixSpec = {
  ...STANDARD_MATRIX,
  batch: 2,
  meanLengths: [256],
  numHeadsQ: [16, 128],
};

/** Rows in BENCHMARK.md's order: length, then h_q, then s_q, then fixed before variable. */
export function buildMatrix(spec: MatrixSpec): BenchRowConfig[] {
  const rows: BenchRowConfig[] = [];
  for (const meanLength of spec.meanLengths)
    for (const numHeadsQ of spec.numHeadsQ)
      for (const seqlenQ of spec.seqlensQ)
        for (const varlen of spec.varlen)
          rows.push({
            batch: spec.batch,
            meanLength,
            numHeadsQ,
            numHeadsKv: spec.numHeadsKv,
            seqlenQ,
            varlen,
            causal: spec.causal,
            dtype: spec.dtype,
          });
  return rows;
}

export interface WorkCount {
  /** T = Σ len_i: cached tokens in the batch. */
  tokens: number;
  /** 2 · s_q · h_q · T · (576 + 512): the QKᵀ and PV products, causal mask ignored (as FlashMLA). */
  flops: number;
  /** 2 · (T · h_kv · 576 + b · s_q · h_q · (576 + 512)): the cache, q and out, 2 bytes each. */
  bytes: number;
}

/** BENCHMARK.md's counting, exactly: the same numerator FlashMLA's benchmark divides by. */
export function countWork(
  lengths: ArrayLike<number>,
  seqlenQ: number,
  numHeadsQ: number,
  numHeadsKv: number,
): WorkCount {
  let tokens = 0;
  for (let i = 0; i < lengths.length; i++) tokens += lengths[i];
  const batch = lengths.length;
  const flops = 2 * seqlenQ * numHeadsQ * tokens * (HEAD_DIM_K + HEAD_DIM_V);
  const bytes =
    2 *
    (tokens * numHeadsKv * HEAD_DIM_K +
      batch * seqlenQ * numHeadsQ * HEAD_DIM_K +
      batch * seqlenQ * numHeadsQ * HEAD_DIM_V);
  return { tokens, flops, bytes };
}

/** A short label for charts: mean length / heads / query tokens, `/v` for variable lengths. */
export function rowLabel(row: BenchRowConfig): string {
  return `${row.meanLength}/h${row.numHeadsQ}/s${row.seqlenQ}${row.varlen ? '/v' : ''}`;
}
