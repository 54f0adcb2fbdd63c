/**
 * A whole benchmark run: the copy ceiling first (on the GPU), then every row of the suite's
 * matrix in order, collected into a report with the card's name, the date, and each row against
 * FlashMLA's figure where the card is one FlashMLA was measured on.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Backend } from '../../backend/backend.js';
import { CudaBackend } from '../../cuda-backend/backend.js';
import { compareWithFlashMla } from './compare.js';
import { suiteRowLabel, suiteRows } from './matrix.js';
import { type BenchRowResult, measureCopyCeiling, measureRow } from './measure.js';
import { type BenchReport, type BenchSettings, MATRIX_CEILING_REASON } from './report.js';

/** Called before each row is measured (`done` rows finished so far), and once at the end. */
export type BenchProgress = (done: number, total: number, label: string) => void;

export function runBench(
  backend: Backend,
  settings: BenchSettings,
  options: { note?: string | null; onProgress?: BenchProgress; now?: Date } = {},
): BenchReport {
  const startedAt = options.now ?? new Date();
  const copyCeiling = backend instanceof CudaBackend ? measureCopyCeiling(backend) : null;
  const rows = suiteRows(settings);
  const timing = {
    warmup: settings.warmup,
    repeats: settings.repeats,
    graphCalls: settings.suite === 'small' ? settings.graphCalls : undefined,
  };
  const results: BenchRowResult[] = [];
  for (const [index, row] of rows.entries()) {
    const label = suiteRowLabel(settings.suite, row);
    options.onProgress?.(index, rows.length, label);
    const ceiling = copyCeiling?.gbps ?? null;
    results.push(measureRow(backend, row, settings.seed, timing, ceiling, label));
  }
  options.onProgress?.(rows.length, rows.length, '');
  const card = backend instanceof CudaBackend ? backend.device.name : hostCpuName();
  return {
    tool: 'flashmla bench',
    flashmla: packageVersion(),
    node: process.versions.node,
    card,
    backend: backend.description,
    decodeKernel: backend instanceof CudaBackend ? backend.decodeVariant : null,
    date: startedAt.toISOString().slice(0, 10),
    startedAt: startedAt.toISOString(),
    note: options.note ?? null,
    copyCeiling,
    matrixCeiling: { measured: false, reason: MATRIX_CEILING_REASON },
    settings,
    rows: results,
    comparison: compareWithFlashMla({
      suite: settings.suite,
      backendKind: backend.kind,
      card,
      seed: settings.seed,
      rows: results,
    }),
  };
}

function hostCpuName(): string {
  const model = cpus()[0]?.model.trim();
  return model ? `CPU ${model}` : 'CPU';
}

function packageVersion(): string {
  const url = new URL('../../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}
