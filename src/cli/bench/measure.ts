/**
 * Measuring one benchmark row, and the copy ceiling the rows are compared with. A row's time is
 * the median of many timed decode calls on the same buffers (CUDA events on the GPU), each call
 * one flashMlaWithKvcache (decode + combine); the metadata is computed once, outside the time,
 * as a model computes it once per decode step and reuses it across layers. Small batches take
 * less GPU time than the host needs to launch a call, so there a CUDA graph of many calls is
 * timed per replay instead, and divided by its calls: the GPU's time of one call.
 */
import type { Backend } from '../../backend/backend.js';
import { HEAD_DIM_V } from '../../config.js';
import { DeviceTensor } from '../../cuda/device-tensor.js';
import { DeviceBuffer, fill } from '../../cuda/memory.js';
import { CudaBackend } from '../../cuda-backend/backend.js';
import { launchCopy } from '../../cuda-backend/launch.js';
import { Random } from '../../tensor/random.js';
import type { Tensor } from '../../tensor/tensor.js';
import { generateOnGpu } from '../../verify/gpu-problems.js';
import { generateProblem } from '../../verify/problems.js';
import { median, prepareDecode } from '../../verify/run.js';
import { type BenchRowConfig, countWork, rowLabel } from './matrix.js';
import { checkRow } from './row-check.js';

export interface Timing {
  /** Untimed calls (or graph replays) before timing. */
  warmup: number;
  /** Timed calls (or graph replays); one time each. */
  repeats: number;
  /**
   * When set, this many back-to-back calls are captured in one CUDA graph and each timed unit
   * is a replay of it; its time divided by graphCalls is a call's.
   */
  graphCalls?: number;
}

export interface BenchRowResult {
  /** Short label, e.g. `4096/h16/s1/v`. */
  label: string;
  config: BenchRowConfig;
  /** T = Σ len_i, and the extremes of the drawn lengths. */
  tokens: number;
  minLength: number;
  maxLength: number;
  flops: number;
  bytes: number;
  medianUs: number;
  minUs: number;
  maxUs: number;
  tflops: number;
  gbps: number;
  /** gbps over the copy ceiling measured in the same run; null where none was measured. */
  copyFraction: number | null;
  ok: boolean;
  /** What the correctness check compared, and what it found. */
  check: string;
}

/** A problem placed where the backend runs: generated on the GPU, or on the host for the CPU. */
interface PlacedProblem {
  q: Tensor;
  kCache: Tensor;
  blockTable: Tensor;
  cacheSeqlens: Tensor;
  lengths: Int32Array;
  softmaxScale: number;
  causal: boolean;
  dispose(): void;
}

function placeProblem(backend: Backend, row: BenchRowConfig, random: Random): PlacedProblem {
  const config = {
    batch: row.batch,
    seqlenQ: row.seqlenQ,
    numHeadsQ: row.numHeadsQ,
    numHeadsKv: row.numHeadsKv,
    meanLength: row.meanLength,
    varlen: row.varlen ? ('normal' as const) : ('off' as const),
    causal: row.causal,
    dtype: row.dtype,
  };
  // The standard rows hold gigabytes of cache: the GPU builds its own problem.
  if (backend instanceof CudaBackend) return generateOnGpu(backend, config, random);
  const problem = generateProblem(config, random);
  const placed = [problem.q, problem.kCache, problem.blockTable, problem.cacheSeqlens].map((t) =>
    backend.upload(t),
  );
  return {
    q: placed[0],
    kCache: placed[1],
    blockTable: placed[2],
    cacheSeqlens: placed[3],
    lengths: problem.lengths,
    softmaxScale: problem.softmaxScale,
    causal: problem.causal,
    dispose: () => {
      for (const tensor of placed) disposeTensor(tensor);
    },
  };
}

/**
 * Builds the row's problem (lengths and data from `seed`, so runs with one seed time the same
 * lengths), checks one call's outputs, then times `timing.repeats` calls after `timing.warmup`.
 */
export function measureRow(
  backend: Backend,
  row: BenchRowConfig,
  seed: number,
  timing: Timing,
  copyCeilingGbps: number | null,
  label = rowLabel(row),
): BenchRowResult {
  const problem = placeProblem(backend, row, new Random(seed));
  const owned: Tensor[] = [];
  try {
    const out = backend.empty(row.dtype, [row.batch, row.seqlenQ, row.numHeadsQ, HEAD_DIM_V]);
    owned.push(out);
    const lse = backend.empty('float32', [row.batch, row.numHeadsQ, row.seqlenQ]);
    owned.push(lse);
    const { metadata, decode } = prepareDecode(problem, { out, lse });
    try {
      // NaN first, so an element the kernels never write fails the check.
      if (out instanceof DeviceTensor) out.fillNaN();
      if (lse instanceof DeviceTensor) lse.fillNaN();
      decode();
      const check = checkRow(problem, out.toHostSync(), lse.toHostSync());
      const times = timeDecode(backend, decode, timing);
      const work = countWork(problem.lengths, row.seqlenQ, row.numHeadsQ, row.numHeadsKv);
      const medianMs = median(times);
      const seconds = medianMs / 1e3;
      const gbps = work.bytes / seconds / 1e9;
      return {
        label,
        config: row,
        tokens: work.tokens,
        minLength: Math.min(...problem.lengths),
        maxLength: Math.max(...problem.lengths),
        flops: work.flops,
        bytes: work.bytes,
        medianUs: medianMs * 1e3,
        minUs: Math.min(...times) * 1e3,
        maxUs: Math.max(...times) * 1e3,
        tflops: work.flops / seconds / 1e12,
        gbps,
        copyFraction: copyCeilingGbps === null ? null : gbps / copyCeilingGbps,
        ok: check.ok,
        check: check.detail,
      };
    } finally {
      metadata.dispose();
    }
  } finally {
    backend.synchronize();
    for (const tensor of owned) disposeTensor(tensor);
    problem.dispose();
  }
}

/**
 * Times of one decode call in milliseconds: each of `timing.repeats` calls run back to back, or
 * with `graphCalls`, each replay of a graph of that many calls divided by it. The graph records
 * the same calls into the same preallocated out and lse; the metadata stays outside it.
 */
function timeDecode(backend: Backend, decode: () => void, timing: Timing): number[] {
  const { warmup, repeats, graphCalls } = timing;
  if (graphCalls === undefined) return backend.time(decode, { warmup, repeats });
  const graph = backend.captureGraph(() => {
    for (let i = 0; i < graphCalls; i++) decode();
  });
  try {
    return backend.time(() => graph.replay(), { warmup, repeats }).map((ms) => ms / graphCalls);
  } finally {
    graph.dispose();
  }
}

export interface CopyCeiling {
  /** (read + write bytes) / median time. */
  gbps: number;
  /** Bytes copied per launch (each of the two buffers is this size). */
  bytes: number;
  medianUs: number;
  repeats: number;
}

/**
 * The bandwidth ceiling on this card, in this run: our plain 16-byte copy kernel between two
 * buffers large enough (1 GiB each by default) that the L2 cache cannot help, counting bytes
 * read plus bytes written, median of `repeats` launches.
 */
export function measureCopyCeiling(
  backend: CudaBackend,
  { bytes = 2 ** 30, warmup = 3, repeats = 20 } = {},
): CopyCeiling {
  const src = DeviceBuffer.alloc(backend.device, bytes);
  try {
    const dst = DeviceBuffer.alloc(backend.device, bytes);
    try {
      fill(src, 32, 0x3f800000, backend.stream);
      const threads = backend.kernels.kernelInfo('flashmla_copy').threads;
      const blocks = Math.ceil(bytes / 16 / threads);
      const times = backend.time(
        () =>
          launchCopy(backend.kernels, backend.stream, {
            src: src.ptr,
            dst: dst.ptr,
            bytes,
            blocks,
          }),
        { warmup, repeats },
      );
      const medianMs = median(times);
      return {
        gbps: (2 * bytes) / (medianMs / 1e3) / 1e9,
        bytes,
        medianUs: medianMs * 1e3,
        repeats,
      };
    } finally {
      backend.synchronize();
      dst.dispose();
    }
  } finally {
    src.dispose();
  }
}

function disposeTensor(tensor: Tensor): void {
  if (tensor instanceof DeviceTensor) tensor.dispose();
}
