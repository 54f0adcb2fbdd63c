/**
 * The benchmark's rows and how each is counted. The default is FlashMLA's benchmark matrix (its
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

/** FlashMLA's benchmark: 48 rows. */
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

/**
 * The small-batch matrix (latency at low concurrency): the standard matrix's shape
 * with a list of batch sizes instead of one.
 */
export interface SmallMatrixSpec extends Omit<MatrixSpec, 'batch'> {
  batches: readonly number[];
}

/** The 20 small-batch rows: b = 1 (fixed lengths only), 4 and 16. */
export const SMALL_MATRIX: SmallMatrixSpec = {
  batches: [1, 4, 16],
  meanLengths: [1024, 8192],
  numHeadsQ: [16, 128],
  seqlensQ: [1],
  varlen: [false, true],
  causal: true,
  dtype: 'bf16',
  numHeadsKv: 1,
};

/** `--small` on the CPU backend: the same shape of matrix at sizes float64 on the host can time. */
export const CPU_SMALL_MATRIX: SmallMatrixSpec = {
  ...SMALL_MATRIX,
  batches: [1, 2],
  meanLengths: [64],
};

/** Which matrix a run times: the b = 128 one call by call, or the small-batch one graph-timed. */
export type BenchSuite = 'standard' | 'small';

export type SuiteSpec =
  | { suite: 'standard'; matrix: MatrixSpec }
  | { suite: 'small'; matrix: SmallMatrixSpec };

/** Rows in the reference tables' order: length, then h_q, then s_q, then fixed before variable. */
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

/**
 * Small-batch rows in the reference table's order: b, then the standard order within each b. A single
 * sequence has fixed lengths only: one length drawn from Normal(mean, mean/2) is just another
 * fixed length.
 */
export function buildSmallMatrix(spec: SmallMatrixSpec): BenchRowConfig[] {
  return spec.batches.flatMap((batch) =>
    buildMatrix({
      ...spec,
      batch,
      varlen: batch === 1 ? spec.varlen.filter((v) => !v) : spec.varlen,
    }),
  );
}

/** The rows a suite runs. */
export function suiteRows(spec: SuiteSpec): BenchRowConfig[] {
  return spec.suite === 'small' ? buildSmallMatrix(spec.matrix) : buildMatrix(spec.matrix);
}

export interface WorkCount {
  /** T = Σ len_i: cached tokens in the batch. */
  tokens: number;
  /** 2 · s_q · h_q · T · (576 + 512): the QKᵀ and PV products, causal mask ignored (as FlashMLA). */
  flops: number;
  /** 2 · (T · h_kv · 576 + b · s_q · h_q · (576 + 512)): the cache, q and out, 2 bytes each. */
  bytes: number;
}

/** FlashMLA's counting, exactly: the same numerator FlashMLA's benchmark divides by. */
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

/** The label in a suite: the small-batch suite's rows differ in b, so `b<batch>/` comes first. */
export function suiteRowLabel(suite: BenchSuite, row: BenchRowConfig): string {
  return suite === 'small' ? `b${row.batch}/${rowLabel(row)}` : rowLabel(row);
}
