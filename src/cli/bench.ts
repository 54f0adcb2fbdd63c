/** `flashmla bench`: FlashMLA's benchmark matrix (or any subset), timed, as a table, JSON, CSV or chart. */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openBackend } from '../api/open-backend.js';
import type { BackendKind } from '../backend/backend.js';
import {
  type BenchDtype,
  CPU_MATRIX,
  CPU_SMALL_MATRIX,
  type MatrixSpec,
  QUICK_MATRIX,
  SMALL_MATRIX,
  STANDARD_MATRIX,
  suiteRows,
} from './bench/matrix.js';
import { renderBenchSvg } from './bench/plot.js';
import {
  type BenchSettings,
  formatBenchCsv,
  formatBenchJson,
  formatBenchTable,
  resultFileName,
} from './bench/report.js';
import { runBench } from './bench/run.js';
import {
  backendFlag,
  type Command,
  choiceFlag,
  intFlag,
  intListFlag,
  ProgressBar,
  pathFlag,
  UsageError,
} from './command.js';
import { prepareOutputDirectory, prepareOutputFile } from './output-path.js';

type Flags = Record<string, string | boolean | undefined>;

/** What the user asked for; undefined where the backend's default applies. */
export interface BenchRequest {
  /** undefined: the default choice (FLASHMLA_BACKEND, else auto). */
  backend: 'auto' | 'cuda' | 'cpu' | undefined;
  device: number;
  quick: boolean;
  /** The small-batch matrix, graph-timed, instead of the b = 128 one. */
  small: boolean;
  batch?: number;
  lengths?: number[];
  heads?: number[];
  seqlensQ?: number[];
  varlen?: boolean[];
  causal?: boolean;
  dtype?: BenchDtype;
  warmup?: number;
  repeats?: number;
  seed: number;
  output: 'table' | 'json' | 'csv';
  plot?: string;
  save?: string;
}

/** Parses and checks every flag before anything runs: a typo costs no GPU time. */
export function parseBenchFlags(values: Flags): BenchRequest {
  if (values.json && values.csv) throw new UsageError('--json and --csv cannot be combined');
  if (values.small && values.quick) throw new UsageError('--small and --quick cannot be combined');
  const optionalInt = (name: string, min: number) =>
    values[name] === undefined ? undefined : intFlag(name, values[name], 0, min);
  const optionalList = (name: string) =>
    values[name] === undefined ? undefined : intListFlag(name, values[name], [], 1);
  const varlen =
    values.varlen === undefined
      ? undefined
      : { on: [true], off: [false], both: [false, true] }[
          choiceFlag('varlen', values.varlen, ['on', 'off', 'both'] as const, 'both')
        ];
  const small = values.small === true;
  const batch = optionalInt('batch', 1);
  if (small && batch === 1 && varlen?.every((v) => v))
    throw new UsageError(
      '--small --batch 1 has fixed lengths only (one sequence): leave out --varlen on',
    );
  return {
    backend: backendFlag(values.backend),
    device: intFlag('device', values.device, 0),
    quick: values.quick === true,
    small,
    batch,
    lengths: optionalList('lengths'),
    heads: optionalList('heads'),
    seqlensQ: optionalList('sq'),
    varlen,
    causal:
      values.causal === undefined
        ? undefined
        : choiceFlag('causal', values.causal, ['on', 'off'] as const, 'on') === 'on',
    dtype:
      values.dtype === undefined
        ? undefined
        : choiceFlag('dtype', values.dtype, ['bf16', 'fp16'] as const, 'bf16'),
    warmup: optionalInt('warmup', 0),
    repeats: optionalInt('repeats', 1),
    seed: intFlag('seed', values.seed, 0),
    output: values.json ? 'json' : values.csv ? 'csv' : 'table',
    plot: pathFlag('plot', values.plot),
    save: pathFlag('save', values.save),
  };
}

/** Calls captured in one CUDA graph by --small (the small-batch method: the GPU's time of a call, without host cost). */
export const SMALL_GRAPH_CALLS = 20;

/**
 * The suite, matrix and timing for this backend: the standard ones on a GPU, a small one on the
 * CPU; the subset flags narrow either suite.
 */
export function resolveBenchSettings(
  request: BenchRequest,
  kind: BackendKind,
): { settings: BenchSettings; note: string | null } {
  const cpu = kind === 'cpu';
  const narrow = <T extends Omit<MatrixSpec, 'batch'>>(base: T): T => ({
    ...base,
    meanLengths: request.lengths ?? base.meanLengths,
    numHeadsQ: request.heads ?? base.numHeadsQ,
    seqlensQ: request.seqlensQ ?? base.seqlensQ,
    varlen: request.varlen ?? base.varlen,
    causal: request.causal ?? base.causal,
    dtype: request.dtype ?? base.dtype,
  });
  const cpuNote = (matrix: string, batches: readonly number[], lengths: readonly number[]) =>
    `CPU backend (float64 on the host): a much smaller default ${matrix} than the GPU's (b = ${batches.join(', ')}, mean length ${lengths.join(', ')}); these numbers do not compare with a GPU's`;
  // The CPU backend takes up to a second a call: a few calls are enough for its median.
  const warmup = request.warmup ?? (cpu ? 1 : 5);
  if (request.small) {
    const base = cpu ? CPU_SMALL_MATRIX : SMALL_MATRIX;
    return {
      settings: {
        suite: 'small',
        matrix: {
          ...narrow(base),
          batches: request.batch === undefined ? base.batches : [request.batch],
        },
        graphCalls: SMALL_GRAPH_CALLS,
        warmup,
        repeats: request.repeats ?? (cpu ? 3 : 50),
        seed: request.seed,
      },
      note: cpu ? cpuNote('small-batch matrix', base.batches, base.meanLengths) : null,
    };
  }
  const base: MatrixSpec = cpu
    ? { ...CPU_MATRIX, varlen: request.quick ? [false] : CPU_MATRIX.varlen }
    : request.quick
      ? QUICK_MATRIX
      : STANDARD_MATRIX;
  return {
    settings: {
      suite: 'standard',
      matrix: { ...narrow(base), batch: request.batch ?? base.batch },
      warmup,
      repeats: request.repeats ?? (cpu ? 3 : 30),
      seed: request.seed,
    },
    note: cpu ? cpuNote('matrix', [CPU_MATRIX.batch], CPU_MATRIX.meanLengths) : null,
  };
}

export const benchCommand: Command = {
  name: 'bench',
  summary:
    "time decode calls over FlashMLA's benchmark matrix, against the copy ceiling and FlashMLA",
  help: `Usage: flashmla bench [--quick | --small] [subset flags] [--json | --csv]
                     [--plot FILE.svg] [--save DIR]

Times decode calls over FlashMLA's own benchmark matrix: b = 128; mean cache length 4096,
8192, 16384; h_q 16, 32, 64, 128; s_q 1, 2; fixed and variable lengths; causal; h_kv = 1; bf16
(48 rows; method and recorded results in the package's docs/benchmark.md).
Each row's problem is built on the GPU (cache rows past each length are NaN), its outputs are
checked once (finite, and the longest sequence against the float64 reference), then the median
of many calls is reported (metadata computed once, outside the time; a call is decode + combine).
Counting is FlashMLA's: T = Σ len; FLOPs = 2·s_q·h_q·T·1088;
bytes = 2·(T·h_kv·576 + b·s_q·h_q·1088). GB/s is also given as a fraction of a copy kernel's
bandwidth measured in the same run. On the CPU backend a much smaller matrix runs instead
(b = 2, mean length 256, h_q 16 and 128, s_q 1 and 2, built on the host).
On a card FlashMLA was measured on (NVIDIA H100 80GB HBM3, NVIDIA H200; 2026-11-28, the same
lengths, timed the same way) a "vs FlashMLA" column gives FlashMLA µs / ours per row (> 1: we
are faster) and its geomean under the table; elsewhere one line says why there is none.
Exit code 1 if any row's check fails.

  --quick            6 rows: mean length 4096, h_q 16/64/128, s_q 1/2, fixed lengths
                     (on the CPU: its matrix with fixed lengths only)
  --small            the small-batch matrix instead (20 rows): b 1, 4, 16; mean length
                     1024, 8192; h_q 16, 128; s_q 1; fixed and variable lengths (b = 1: fixed
                     only). Graph-timed: 20 calls captured in one CUDA graph, the median of 50
                     replays after 5 warm-up, divided by 20 (the GPU's time of one call; FlashMLA
                     has figures on the H100). The subset flags narrow it (--batch picks one b).
                     On the CPU backend: the same at b 1, 2 and mean length 64, 1 warm-up and
                     3 timed replays
  --batch N          sequences per call (default 128)
  --lengths A,B,...  mean cache lengths (default 4096,8192,16384)
  --heads A,B,...    query heads h_q (default 16,32,64,128)
  --sq A,B,...       query tokens per sequence s_q (default 1,2)
  --varlen on|off|both  variable lengths, Normal(mean, mean/2) clamped to >= s_q (default both)
  --causal on|off    causal mask (default on)
  --dtype bf16|fp16  element type (default bf16)
  --warmup N         untimed calls per row before timing (default 5; CPU 1); --small: replays
  --repeats N        timed calls per row; the median is reported (default 30; CPU 3);
                     --small: timed replays (default 50; CPU 3)
  --seed N           seed of lengths, block placement and data (default 0, so runs compare;
                     variable-length rows compare with FlashMLA only at seed 0)
  --backend auto|cuda|cpu  where to run (auto: the GPU if usable; default: $FLASHMLA_BACKEND
                     if set, else auto)
  --device N         CUDA device ordinal (default 0)
  --json             print the full results as JSON instead of the table
  --csv              print the rows as CSV instead of the table
  --plot FILE.svg    also write a chart: per row FlashMLA µs / ours around a line at 1.0 (where
                     the card has FlashMLA figures), then GB/s and TFLOPS with FlashMLA's as
                     ticks and the copy ceiling as a line (--small: µs per call, ours and
                     FlashMLA's)
  --save DIR         also write the full results to DIR/<card>-<YYYY-MM-DD>.json`,
  options: {
    quick: { type: 'boolean' },
    small: { type: 'boolean' },
    batch: { type: 'string' },
    lengths: { type: 'string' },
    heads: { type: 'string' },
    sq: { type: 'string' },
    varlen: { type: 'string' },
    causal: { type: 'string' },
    dtype: { type: 'string' },
    warmup: { type: 'string' },
    repeats: { type: 'string' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    device: { type: 'string' },
    json: { type: 'boolean' },
    csv: { type: 'boolean' },
    plot: { type: 'string' },
    save: { type: 'string' },
  },
  async run(values) {
    const request = parseBenchFlags(values);
    if (request.plot !== undefined) prepareOutputFile('plot', request.plot);
    if (request.save !== undefined) prepareOutputDirectory('save', request.save);
    const backend = openBackend({ backend: request.backend, device: request.device });
    const { settings, note } = resolveBenchSettings(request, backend.kind);
    const progress = new ProgressBar(suiteRows(settings).length, 'flashmla bench');
    progress.update(0, backend.kind === 'cuda' ? 'copy ceiling' : '');
    let report: ReturnType<typeof runBench>;
    try {
      report = runBench(backend, settings, {
        note,
        onProgress: (done, _total, label) => progress.update(done, label),
      });
    } finally {
      progress.clear();
    }
    const text = {
      table: formatBenchTable,
      json: formatBenchJson,
      csv: formatBenchCsv,
    }[request.output](report);
    console.log(text);
    for (const row of report.rows) {
      if (!row.ok) console.error(`flashmla bench: ${row.label} FAILED its check: ${row.check}`);
    }
    if (request.plot !== undefined) {
      writeFileSync(request.plot, renderBenchSvg(report));
      console.error(`chart written to ${request.plot}`);
    }
    if (request.save !== undefined) {
      const dir = request.save;
      const name = resultFileName(report.card, report.date, (n) => existsSync(join(dir, n)));
      writeFileSync(join(dir, name), `${formatBenchJson(report)}\n`);
      console.error(`results saved to ${join(dir, name)}`);
    }
    return report.rows.every((row) => row.ok) ? 0 : 1;
  },
};
