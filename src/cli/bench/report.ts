/**
 * A benchmark run as data, and its three text forms: the fixed-width table people read, JSON
 * (everything, for saving and comparing runs) and CSV (the rows, for spreadsheets).
 */
import { formatNumber, formatTable } from '../table.js';
import type { MatrixSpec } from './matrix.js';
import type { BenchRowResult, CopyCeiling } from './measure.js';

export interface BenchSettings {
  matrix: MatrixSpec;
  warmup: number;
  repeats: number;
  /** Seed of the lengths, block placement and data: one seed, the same lengths run to run. */
  seed: number;
}

export interface BenchReport {
  tool: 'flashmla bench';
  flashmla: string;
  node: string;
  /** The device's own name (`NVIDIA H100 80GB HBM3`), or the host CPU's for the CPU backend. */
  card: string;
  /** The backend's one-line description. */
  backend: string;
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

function describeMatrix(report: BenchReport): string {
  const { matrix } = report.settings;
  return [
    `b = ${matrix.batch}`,
    `h_kv = ${matrix.numHeadsKv}`,
    matrix.causal ? 'causal' : 'not causal',
    matrix.dtype,
    `lengths seed ${report.settings.seed}`,
    `median of ${report.settings.repeats} call${report.settings.repeats === 1 ? '' : 's'} after ${report.settings.warmup} warm-up`,
  ].join(', ');
}

export function formatBenchTable(report: BenchReport): string {
  const ceiling = report.copyCeiling;
  const header = [
    `flashmla bench on ${report.backend}, ${report.date}`,
    ...(report.note ? [report.note] : []),
    describeMatrix(report),
    ceiling
      ? `copy ceiling: ${formatNumber(ceiling.gbps, 0)} GB/s (our 16-byte copy kernel, 2 × ${formatBytes(ceiling.bytes)}, read + write, median of ${ceiling.repeats})`
      : 'copy ceiling: not measured on this backend',
    `matrix ceiling: ${report.matrixCeiling.reason}`,
  ];
  const table = formatTable(
    [
      { header: 'mean len' },
      { header: 'h_q' },
      { header: 's_q' },
      { header: 'varlen', align: 'left' },
      { header: 'µs' },
      { header: 'TFLOPS' },
      { header: 'GB/s' },
      { header: '% of copy' },
      { header: 'ok', align: 'left' },
    ],
    report.rows.map((row) => [
      String(row.config.meanLength),
      String(row.config.numHeadsQ),
      String(row.config.seqlenQ),
      row.config.varlen ? 'yes' : 'no',
      formatNumber(row.medianUs, 1),
      formatRate(row.tflops),
      formatRate(row.gbps),
      formatPercent(row.copyFraction),
      row.ok ? 'ok' : 'FAIL',
    ]),
  );
  return `${header.join('\n')}\n\n${table}`;
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
] as const;

export function formatBenchCsv(report: BenchReport): string {
  const lines = report.rows.map((row) =>
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
