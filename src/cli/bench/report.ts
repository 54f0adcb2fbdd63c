/**
 * A benchmark run as data, and its three text forms: the fixed-width table people read, JSON
 * (everything, for saving and comparing runs) and CSV (the rows, for spreadsheets).
 */
import { type Column, formatNumber, formatTable } from '../table.js';
import { type FlashMlaComparison, SLOW_RATIO } from './compare.js';
import type { MatrixSpec, SmallMatrixSpec } from './matrix.js';
import type { BenchRowResult, CopyCeiling } from './measure.js';

interface TimingSettings {
  /** Untimed runs before timing: calls, or graph replays in the small-batch suite. */
  warmup: number;
  /** Timed runs; the median is reported. */
  repeats: number;
  /** Seed of the lengths, block placement and data: one seed, the same lengths run to run. */
  seed: number;
}

export type BenchSettings = TimingSettings &
  (
    | { suite: 'standard'; matrix: MatrixSpec }
    | {
        suite: 'small';
        matrix: SmallMatrixSpec;
        /** Decode calls captured in one CUDA graph; a replay's time divided by it is a call's. */
        graphCalls: number;
      }
  );

export interface BenchReport {
  tool: 'flashmla bench';
  flashmla: string;
  node: string;
  /** The device's own name (`NVIDIA H100 80GB HBM3`), or the host CPU's for the CPU backend. */
  card: string;
  /** The backend's one-line description. */
  backend: string;
  /** The CUDA decode kernel that ran (FLASHMLA_DECODE_KERNEL's variant); null on the CPU. */
  decodeKernel: string | null;
  /** UTC day of the run, YYYY-MM-DD. */
  date: string;
  startedAt: string;
  /** Anything a reader must know about this run's matrix (the CPU backend's small one). */
  note: string | null;
  /** Measured in the same run; null on the CPU backend (no copy kernel there). */
  copyCeiling: CopyCeiling | null;
  /** There is no GEMM kernel here to measure the matrix-unit ceiling with. */
  matrixCeiling: { measured: false; reason: string };
  settings: BenchSettings;
  rows: BenchRowResult[];
  /** Each row against FlashMLA's figure on this card, or why there is none. */
  comparison: FlashMlaComparison;
}

export const MATRIX_CEILING_REASON =
  'not measured in this run (no GEMM kernel here); a PyTorch bf16 8192³ matmul runs at ' +
  '694 TFLOP/s on an H100 and 687 TFLOP/s on an H200 (docs/benchmark.md)';

/** TFLOPS and GB/s span 0.001 (the CPU) to thousands: keep about three significant digits. */
function formatRate(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  return formatNumber(value, magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3);
}

function formatPercent(fraction: number | null): string {
  return fraction === null ? '-' : formatNumber(fraction * 100, 1);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** How a row's time was taken, in words. */
export function describeTiming(settings: BenchSettings): string {
  const { warmup, repeats } = settings;
  return settings.suite === 'small'
    ? `per call: median of ${plural(repeats, 'replay')} of a captured graph of ${plural(settings.graphCalls, 'call')} after ${warmup} warm-up, divided by ${settings.graphCalls}`
    : `median of ${plural(repeats, 'call')} after ${warmup} warm-up`;
}

function describeMatrix(report: BenchReport): string {
  const { settings } = report;
  const { matrix } = settings;
  return [
    settings.suite === 'small'
      ? `b = ${settings.matrix.batches.join(', ')}${settings.matrix.batches.includes(1) ? ' (b = 1: fixed lengths only)' : ''}`
      : `b = ${settings.matrix.batch}`,
    `h_kv = ${matrix.numHeadsKv}`,
    matrix.causal ? 'causal' : 'not causal',
    matrix.dtype,
    `lengths seed ${settings.seed}`,
    describeTiming(settings),
  ].join(', ');
}

function formatRatio(ratio: number): string {
  return `${formatNumber(ratio, 2)}×`;
}

/**
 * The lines under the table: what the "vs FlashMLA" column is and its geomean, or why this run
 * has no such column.
 */
export function describeComparison(comparison: FlashMlaComparison): string[] {
  if (!comparison.available) return [`vs FlashMLA: not shown: ${comparison.reason}`];
  const { reference, summary } = comparison;
  const lines = [
    `vs FlashMLA = FlashMLA µs / ours (> 1: we are faster), FlashMLA measured on ${reference.card} on ${reference.date} on these lengths, timed as this run`,
    `the reference: ${reference.kernel}`,
  ];
  const rowsWithFigure = comparison.rows.filter((row) => row !== null).length;
  const scope =
    rowsWithFigure === comparison.rows.length
      ? plural(summary.compared, 'row')
      : `${plural(summary.compared, 'row')} (of ${comparison.rows.length}: FlashMLA has no figure for the others)`;
  const failed =
    summary.failedLeftOut > 0
      ? `; ${plural(summary.failedLeftOut, 'row')} that failed its check left out`
      : '';
  if (summary.geomean === null || summary.min === null || summary.max === null) {
    lines.push(`no row with a FlashMLA figure passed its check${failed}`);
    return lines;
  }
  lines.push(
    `geomean ${formatRatio(summary.geomean)} over ${scope}, from ${formatRatio(summary.min)} to ${formatRatio(summary.max)}; below ${formatNumber(SLOW_RATIO, 2)}×: ${plural(summary.belowSlowRatio, 'row')}; below 1.00×: ${plural(summary.belowOne, 'row')}${failed}`,
  );
  return lines;
}

export function formatBenchTable(report: BenchReport): string {
  const ceiling = report.copyCeiling;
  const header = [
    `flashmla bench on ${report.backend}${report.decodeKernel === null ? '' : `, decode kernel ${report.decodeKernel}`}, ${report.date}`,
    ...(report.note ? [report.note] : []),
    describeMatrix(report),
    ceiling
      ? `copy ceiling: ${formatNumber(ceiling.gbps, 0)} GB/s (our 16-byte copy kernel, 2 × ${formatBytes(ceiling.bytes)}, read + write, median of ${ceiling.repeats})`
      : 'copy ceiling: not measured on this backend',
    `matrix ceiling: ${report.matrixCeiling.reason}`,
  ];
  const comparison = report.comparison.available ? report.comparison : null;
  const small = report.settings.suite === 'small';
  const columns: Column[] = [
    ...(small ? [{ header: 'b' }] : []),
    { header: 'mean len' },
    { header: 'h_q' },
    { header: 's_q' },
    { header: 'varlen', align: 'left' },
    { header: 'µs' },
    { header: 'TFLOPS' },
    { header: 'GB/s' },
    { header: '% of copy' },
    ...(comparison ? [{ header: 'FlashMLA µs' }, { header: 'vs FlashMLA' }] : []),
    { header: 'ok', align: 'left' },
  ];
  const table = formatTable(
    columns,
    report.rows.map((row, i) => {
      const versus = comparison?.rows[i] ?? null;
      return [
        ...(small ? [String(row.config.batch)] : []),
        String(row.config.meanLength),
        String(row.config.numHeadsQ),
        String(row.config.seqlenQ),
        row.config.varlen ? 'yes' : 'no',
        formatNumber(row.medianUs, 1),
        formatRate(row.tflops),
        formatRate(row.gbps),
        formatPercent(row.copyFraction),
        ...(comparison
          ? versus === null
            ? ['-', '-']
            : [formatNumber(versus.flashmlaUs, 1), formatRatio(versus.ratio)]
          : []),
        row.ok ? 'ok' : 'FAIL',
      ];
    }),
  );
  return `${header.join('\n')}\n\n${table}\n\n${describeComparison(report.comparison).join('\n')}`;
}

export function formatBenchJson(report: BenchReport): string {
  return JSON.stringify(report, null, 2);
}

/** CSV columns, in order: one line per row, numbers unrounded. */
export const CSV_COLUMNS = [
  'mean_len',
  'batch',
  'h_q',
  'h_kv',
  's_q',
  'varlen',
  'causal',
  'dtype',
  'tokens',
  'min_len',
  'max_len',
  'flops',
  'bytes',
  'median_us',
  'min_us',
  'max_us',
  'tflops',
  'gbps',
  'copy_fraction',
  'ok',
  'flashmla_us',
  'vs_flashmla',
] as const;

/** The `flashmla_us` and `vs_flashmla` cells are empty where the run has no FlashMLA figure. */
export function formatBenchCsv(report: BenchReport): string {
  const comparison = report.comparison.available ? report.comparison.rows : [];
  const lines = report.rows.map((row, i) =>
    [
      row.config.meanLength,
      row.config.batch,
      row.config.numHeadsQ,
      row.config.numHeadsKv,
      row.config.seqlenQ,
      row.config.varlen,
      row.config.causal,
      row.config.dtype,
      row.tokens,
      row.minLength,
      row.maxLength,
      row.flops,
      row.bytes,
      row.medianUs,
      row.minUs,
      row.maxUs,
      row.tflops,
      row.gbps,
      row.copyFraction ?? '',
      row.ok,
      comparison[i]?.flashmlaUs ?? '',
      comparison[i]?.ratio ?? '',
    ].join(','),
  );
  return [CSV_COLUMNS.join(','), ...lines].join('\n');
}

/** Lowercase letters, digits, `.`, `_` and `-` only: `NVIDIA H100 80GB HBM3` → `nvidia-h100-80gb-hbm3`. */
export function slug(text: string): string {
  const slugged = text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  return slugged === '' ? 'unknown' : slugged;
}

/** `<card>-<date>.json`, with `-2`, `-3`, ... before `.json` while `exists` says a name is taken. */
export function resultFileName(
  card: string,
  date: string,
  exists: (name: string) => boolean = () => false,
): string {
  const stem = `${slug(card)}-${slug(date)}`;
  let name = `${stem}.json`;
  for (let n = 2; exists(name); n++) name = `${stem}-${n}.json`;
  return name;
}

function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30 && bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30} GiB`;
  if (bytes >= 2 ** 20 && bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`;
  return `${bytes} bytes`;
}
