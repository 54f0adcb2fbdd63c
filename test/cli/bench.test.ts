import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Backend } from '../../src/backend/backend.js';
import { compareWithFlashMla } from '../../src/cli/bench/compare.js';
import { FLASHMLA_SMALL } from '../../src/cli/bench/flashmla-reference.js';
import {
  type BenchRowConfig,
  buildMatrix,
  buildSmallMatrix,
  CPU_SMALL_MATRIX,
  countWork,
  QUICK_MATRIX,
  rowLabel,
  SMALL_MATRIX,
  STANDARD_MATRIX,
  suiteRowLabel,
  suiteRows,
} from '../../src/cli/bench/matrix.js';
import type { BenchRowResult } from '../../src/cli/bench/measure.js';
import { renderBenchSvg } from '../../src/cli/bench/plot.js';
import {
  type BenchReport,
  CSV_COLUMNS,
  formatBenchCsv,
  formatBenchJson,
  formatBenchTable,
  MATRIX_CEILING_REASON,
  resultFileName,
  slug,
} from '../../src/cli/bench/report.js';
import { checkRow } from '../../src/cli/bench/row-check.js';
import { runBench } from '../../src/cli/bench/run.js';
import { parseBenchFlags, resolveBenchSettings } from '../../src/cli/bench.js';
import { UsageError } from '../../src/cli/command.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import { referenceDecode } from '../../src/reference/reference.js';
import { Random } from '../../src/tensor/random.js';
import { generateProblem } from '../../src/verify/problems.js';
import { allElements, parseXml, runCli } from './support.js';

test('the counting is BENCHMARK.md’s, checked by hand and against its FlashMLA table', () => {
  // T = 300; FLOPs = 2·2·16·300·1088; bytes = 2·(300·576 + 2·2·16·576 + 2·2·16·512).
  assert.deepEqual(countWork([100, 200], 2, 16, 1), {
    tokens: 300,
    flops: 20_889_600,
    bytes: 484_864,
  });
  // FlashMLA's first H100 row: mean 4096, h_q 16, s_q 1, fixed, 210 µs -> 87 TFLOPS, 2897 GB/s
  // (BENCHMARK.md's 2900 is from the time before it was rounded to 210).
  const work = countWork(new Array(128).fill(4096), 1, 16, 1);
  assert.equal(work.tokens, 524_288);
  assert.equal(Math.round(work.flops / 210e-6 / 1e12), 87);
  assert.equal(Math.round(work.bytes / 210e-6 / 1e9), 2897);
  // h_kv counts the cache once per KV head.
  assert.equal(countWork([64], 1, 8, 2).bytes, 2 * (64 * 2 * 576 + 8 * 1088));
});

test('the standard matrix has BENCHMARK.md’s 48 rows in its order; --quick has 6', () => {
  const rows = buildMatrix(STANDARD_MATRIX);
  assert.equal(rows.length, 48);
  assert.deepEqual(rows.slice(0, 3).map(rowLabel), ['4096/h16/s1', '4096/h16/s1/v', '4096/h16/s2']);
  assert.equal(rowLabel(rows[47]), '16384/h128/s2/v');
  assert.ok(
    rows.every((r) => r.batch === 128 && r.causal && r.dtype === 'bf16' && r.numHeadsKv === 1),
  );
  const quick = buildMatrix(QUICK_MATRIX);
  assert.deepEqual(quick.map(rowLabel), [
    '4096/h16/s1',
    '4096/h16/s2',
    '4096/h64/s1',
    '4096/h64/s2',
    '4096/h128/s1',
    '4096/h128/s2',
  ]);
});

test('flags choose the matrix: BENCHMARK.md’s on a GPU, a small one on the CPU, subsets on request', () => {
  const gpu = resolveBenchSettings(parseBenchFlags({}), 'cuda');
  assert.equal(gpu.settings.suite, 'standard');
  assert.equal(suiteRows(gpu.settings).length, 48);
  assert.deepEqual([gpu.settings.warmup, gpu.settings.repeats, gpu.settings.seed], [5, 30, 0]);
  assert.equal(gpu.note, null);
  assert.equal(
    suiteRows(resolveBenchSettings(parseBenchFlags({ quick: true }), 'cuda').settings).length,
    6,
  );

  const cpu = resolveBenchSettings(parseBenchFlags({}), 'cpu');
  assert.deepEqual(cpu.settings.matrix, {
    ...STANDARD_MATRIX,
    batch: 2,
    meanLengths: [256],
    numHeadsQ: [16, 128],
  });
  assert.equal(suiteRows(cpu.settings).length, 8);
  assert.match(cpu.note ?? '', /CPU backend/);

  const subset = resolveBenchSettings(
    parseBenchFlags({
      batch: '4',
      lengths: '100, 200',
      heads: '32',
      sq: '2',
      varlen: 'on',
      causal: 'off',
      dtype: 'fp16',
      warmup: '0',
      repeats: '7',
      seed: '9',
    }),
    'cuda',
  ).settings;
  assert.deepEqual(subset.matrix, {
    batch: 4,
    meanLengths: [100, 200],
    numHeadsQ: [32],
    seqlensQ: [2],
    varlen: [true],
    causal: false,
    dtype: 'fp16',
    numHeadsKv: 1,
  });
  assert.deepEqual([subset.warmup, subset.repeats, subset.seed], [0, 7, 9]);
});

test('--small: BENCHMARK.md’s 20 small-batch rows, graph-timed; a tiny equivalent on the CPU; its flags', () => {
  assert.equal(parseBenchFlags({}).small, false);
  const gpu = resolveBenchSettings(parseBenchFlags({ small: true }), 'cuda');
  assert.equal(gpu.note, null);
  assert.ok(gpu.settings.suite === 'small');
  const { graphCalls, warmup, repeats, seed } = gpu.settings;
  assert.deepEqual([graphCalls, warmup, repeats, seed], [20, 5, 50, 0]);
  const rows = suiteRows(gpu.settings);
  // b = 1: 2 lengths × 2 head counts, fixed only; b = 4 and 16: × fixed and variable.
  assert.deepEqual(
    rows.map((row) => suiteRowLabel('small', row)),
    [
      'b1/1024/h16/s1',
      'b1/1024/h128/s1',
      'b1/8192/h16/s1',
      'b1/8192/h128/s1',
      'b4/1024/h16/s1',
      'b4/1024/h16/s1/v',
      'b4/1024/h128/s1',
      'b4/1024/h128/s1/v',
      'b4/8192/h16/s1',
      'b4/8192/h16/s1/v',
      'b4/8192/h128/s1',
      'b4/8192/h128/s1/v',
      'b16/1024/h16/s1',
      'b16/1024/h16/s1/v',
      'b16/1024/h128/s1',
      'b16/1024/h128/s1/v',
      'b16/8192/h16/s1',
      'b16/8192/h16/s1/v',
      'b16/8192/h128/s1',
      'b16/8192/h128/s1/v',
    ],
  );
  assert.ok(
    rows.every((r) => r.seqlenQ === 1 && r.causal && r.dtype === 'bf16' && r.numHeadsKv === 1),
  );
  assert.deepEqual(gpu.settings.matrix, SMALL_MATRIX);

  const cpu = resolveBenchSettings(parseBenchFlags({ small: true }), 'cpu');
  assert.ok(cpu.settings.suite === 'small');
  assert.deepEqual(
    [cpu.settings.graphCalls, cpu.settings.warmup, cpu.settings.repeats],
    [20, 1, 3],
  );
  assert.deepEqual(
    suiteRows(cpu.settings).map((row) => suiteRowLabel('small', row)),
    [
      'b1/64/h16/s1',
      'b1/64/h128/s1',
      'b2/64/h16/s1',
      'b2/64/h16/s1/v',
      'b2/64/h128/s1',
      'b2/64/h128/s1/v',
    ],
  );
  assert.match(
    cpu.note ?? '',
    /^CPU backend .* small-batch matrix than the GPU's \(b = 1, 2, mean length 64\)/,
  );

  // The subset flags narrow it; --batch picks one b.
  const subset = resolveBenchSettings(
    parseBenchFlags({ small: true, batch: '4', heads: '16', varlen: 'on', repeats: '9' }),
    'cuda',
  ).settings;
  assert.deepEqual(
    suiteRows(subset).map((row) => suiteRowLabel('small', row)),
    ['b4/1024/h16/s1/v', 'b4/8192/h16/s1/v'],
  );
  assert.equal(subset.repeats, 9);
  assert.equal(
    suiteRows(resolveBenchSettings(parseBenchFlags({ small: true, batch: '1' }), 'cuda').settings)
      .length,
    4,
  );
  assert.throws(() => parseBenchFlags({ small: true, quick: true }), {
    name: 'UsageError',
    message: '--small and --quick cannot be combined',
  });
  assert.throws(
    () => parseBenchFlags({ small: true, batch: '1', varlen: 'on' }),
    (error: unknown) => error instanceof UsageError && /fixed lengths only/.test(error.message),
  );
});

test('result file names are slugged: letters, digits, ".", "_" and "-" only', () => {
  assert.equal(
    resultFileName('NVIDIA H100 80GB HBM3', '2026-11-27'),
    'nvidia-h100-80gb-hbm3-2026-11-27.json',
  );
  assert.equal(
    slug('CPU Intel(R) Xeon(R) Gold 6338 @ 2.00GHz'),
    'cpu-intel-r-xeon-r-gold-6338-2.00ghz',
  );
  assert.equal(slug('../../etc/passwd'), 'etc-passwd');
  assert.equal(slug('***'), 'unknown');
  const taken = new Set(['nvidia-h200-2026-11-27.json', 'nvidia-h200-2026-11-27-2.json']);
  assert.equal(
    resultFileName('NVIDIA H200', '2026-11-27', (name) => taken.has(name)),
    'nvidia-h200-2026-11-27-3.json',
  );
});

/**
 * A report with made-up but self-consistent numbers (no timing involved): the --quick rows at
 * 230, 270, ..., 430 µs, the fifth failing its check.
 */
function sampleReport(card = 'NVIDIA H100 80GB HBM3', copyGbps: number | null = 2832): BenchReport {
  const rows: BenchRowResult[] = buildMatrix(QUICK_MATRIX).map((config: BenchRowConfig, i) => {
    const work = countWork(
      new Array(config.batch).fill(config.meanLength),
      config.seqlenQ,
      config.numHeadsQ,
      1,
    );
    const medianUs = 230 + 40 * i;
    const gbps = work.bytes / (medianUs * 1e-6) / 1e9;
    return {
      label: rowLabel(config),
      config,
      tokens: work.tokens,
      minLength: config.meanLength,
      maxLength: config.meanLength,
      flops: work.flops,
      bytes: work.bytes,
      medianUs,
      minUs: medianUs - 1,
      maxUs: medianUs + 2,
      tflops: work.flops / (medianUs * 1e-6) / 1e12,
      gbps,
      copyFraction: copyGbps === null ? null : gbps / copyGbps,
      ok: i !== 4,
      check: i !== 4 ? 'outputs finite' : 'out[0, 0, 0, 0] = NaN, not finite',
    };
  });
  return {
    tool: 'flashmla bench',
    flashmla: '0.1.0',
    node: '20.0.0',
    card,
    backend: `cuda:0 ${card} (sm_90, 132 SMs)`,
    decodeKernel: 'seesaw',
    date: '2026-11-27',
    startedAt: '2026-11-27T10:00:00.000Z',
    note: null,
    copyCeiling:
      copyGbps === null ? null : { gbps: copyGbps, bytes: 2 ** 30, medianUs: 758, repeats: 20 },
    matrixCeiling: { measured: false, reason: MATRIX_CEILING_REASON },
    settings: { suite: 'standard', matrix: QUICK_MATRIX, warmup: 5, repeats: 30, seed: 0 },
    rows,
    comparison: compareWithFlashMla({
      suite: 'standard',
      backendKind: 'cuda',
      card,
      seed: 0,
      rows,
    }),
  };
}

test('the table names the card, date and ceilings, and has one line per row', () => {
  const report = sampleReport();
  const text = formatBenchTable(report);
  const lines = text.split('\n');
  assert.equal(
    lines[0],
    'flashmla bench on cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), decode kernel seesaw, 2026-11-27',
  );
  assert.match(text, /copy ceiling: 2832 GB\/s/);
  assert.match(text, /matrix ceiling: not measured in this run.*694 TFLOP\/s on an H100/);
  const header = lines.findIndex((line) => line.startsWith('mean len'));
  assert.match(
    lines[header],
    /mean len\s+h_q\s+s_q\s+varlen\s+µs\s+TFLOPS\s+GB\/s\s+% of copy\s+FlashMLA µs\s+vs FlashMLA\s+ok/,
  );
  const body = lines.slice(header + 2, header + 2 + report.rows.length);
  assert.equal(lines[header + 2 + report.rows.length], '');
  // 4096/h16/s1 at 230 µs: 18.25 GFLOP / 230 µs = 79.4 TFLOPS; 608.4 MB / 230 µs = 2645 GB/s;
  // FlashMLA took 210 µs on this row on the H100: 210 / 230 = 0.91.
  assert.deepEqual(body[0].trim().split(/\s+/), [
    '4096',
    '16',
    '1',
    'no',
    '230.0',
    '79.4',
    '2645',
    '93.4',
    '210.0',
    '0.91×',
    'ok',
  ]);
  assert.match(body[4], /249\.0\s+0\.64×\s+FAIL$/);
  assert.match(body[5], /471\.0\s+1\.10×\s+ok$/);
  // Under the table: what the column is, then the geomean of the rows that passed their check
  // (210/230, 211/270, 214/310, 246/350, 471/430), and the failed row left out.
  const under = lines.slice(header + 3 + report.rows.length);
  assert.equal(
    under[0],
    'vs FlashMLA = FlashMLA µs / ours (> 1: we are faster), FlashMLA measured on NVIDIA H100 80GB HBM3 on 2026-11-28 on these lengths, timed as this run',
  );
  assert.match(under[1], /^the reference: FlashMLA 2025-04, .*sm_90a with nvcc 13\.0$/);
  assert.equal(
    under[2],
    'geomean 0.82× over 5 rows, from 0.69× to 1.10×; below 0.97×: 4 rows; below 1.00×: 4 rows; 1 row that failed its check left out',
  );
  const other = formatBenchTable(sampleReport('x', null));
  assert.match(other, /copy ceiling: not measured/);
  assert.doesNotMatch(other, /FlashMLA µs/);
  assert.match(
    other,
    /\nvs FlashMLA: not shown: FlashMLA's figures were measured on NVIDIA H100 80GB HBM3 and NVIDIA H200, not on x$/,
  );
});

test('JSON and CSV parse back to the same numbers', () => {
  const report = sampleReport();
  assert.deepEqual(JSON.parse(formatBenchJson(report)), report);
  const [header, ...lines] = formatBenchCsv(report).split('\n');
  assert.deepEqual(header.split(','), [...CSV_COLUMNS]);
  assert.equal(lines.length, report.rows.length);
  lines.forEach((line, i) => {
    const cells = Object.fromEntries(line.split(',').map((cell, c) => [CSV_COLUMNS[c], cell]));
    const row = report.rows[i];
    assert.equal(Number(cells.mean_len), row.config.meanLength);
    assert.equal(Number(cells.h_q), row.config.numHeadsQ);
    assert.equal(Number(cells.s_q), row.config.seqlenQ);
    assert.equal(cells.varlen, String(row.config.varlen));
    assert.equal(Number(cells.flops), row.flops);
    assert.equal(Number(cells.bytes), row.bytes);
    assert.equal(Number(cells.median_us), row.medianUs);
    assert.equal(Number(cells.tflops), row.tflops);
    assert.equal(Number(cells.gbps), row.gbps);
    assert.equal(Number(cells.copy_fraction), row.copyFraction);
    assert.equal(cells.ok, String(row.ok));
    const versus = report.comparison.available ? report.comparison.rows[i] : null;
    assert.ok(versus !== null);
    assert.equal(Number(cells.flashmla_us), versus.flashmlaUs);
    assert.equal(Number(cells.vs_flashmla), versus.ratio);
    assert.equal(Number(cells.vs_flashmla), versus.flashmlaUs / row.medianUs);
  });
  const other = formatBenchCsv(sampleReport('x', null)).split('\n')[1].split(',');
  assert.equal(other.length, CSV_COLUMNS.length);
  assert.deepEqual([other[18], other[20], other[21]], ['', '', '']);
  const json = JSON.parse(formatBenchJson(report)) as BenchReport;
  assert.ok(json.comparison.available);
  assert.equal(json.comparison.summary.compared, 5);
  assert.equal(json.comparison.rows[0]?.flashmlaUs, 210);
  const none = JSON.parse(formatBenchJson(sampleReport('x', null))) as BenchReport;
  assert.deepEqual(Object.keys(none.comparison), ['available', 'reason']);
});

test('the SVG chart is well-formed, with a bar pair and a label per row and the ceiling line', () => {
  const report = sampleReport('Card & <Co>');
  const svg = parseXml(renderBenchSvg(report));
  assert.equal(svg.name, 'svg');
  assert.equal(svg.attributes.xmlns, 'http://www.w3.org/2000/svg');
  const elements = allElements(svg);
  const byClass = (name: string) => elements.filter((e) => e.attributes.class === name);
  assert.equal(byClass('bar-gbps').length, report.rows.length);
  assert.equal(byClass('bar-tflops').length, report.rows.length);
  assert.deepEqual(
    byClass('row-label').map((e) => e.text),
    report.rows.map((r) => (r.ok ? r.label : `${r.label} FAIL`)),
  );
  assert.equal(byClass('title')[0].text, 'flashmla decode: Card &amp; &lt;Co&gt;, 2026-11-27');
  assert.equal(byClass('ceiling').length, 1);
  assert.match(byClass('ceiling-label')[0].text, /copy ceiling 2832 GB\/s/);
  // Bars grow up from one baseline; a taller GB/s bar means more GB/s.
  const heights = byClass('bar-gbps').map((e) => Number(e.attributes.height));
  const bottoms = byClass('bar-gbps').map(
    (e) => Number(e.attributes.y) + Number(e.attributes.height),
  );
  assert.ok(bottoms.every((b) => Math.abs(b - bottoms[0]) < 0.2));
  const order = (values: number[]) => values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  assert.deepEqual(order(heights), order(report.rows.map((r) => r.gbps)));
  // The ceiling sits above every bar here (2832 GB/s over bars below it).
  const ceilingY = Number(byClass('ceiling')[0].attributes.y1);
  assert.ok(byClass('bar-gbps').every((e) => Number(e.attributes.y) > ceilingY));
  assert.equal(
    allElements(parseXml(renderBenchSvg(sampleReport('x', null)))).filter(
      (e) => e.attributes.class === 'ceiling',
    ).length,
    0,
  );
});

/** The small-batch rows on the H100 at FlashMLA's time / `speedup`, the second row failing. */
function smallReport(card = 'NVIDIA H100 80GB HBM3', speedup = 1.25): BenchReport {
  const rows: BenchRowResult[] = buildSmallMatrix(SMALL_MATRIX).map((config, i) => {
    const work = countWork(
      new Array(config.batch).fill(config.meanLength),
      config.seqlenQ,
      config.numHeadsQ,
      1,
    );
    const medianUs = FLASHMLA_SMALL.rows[i].figures['NVIDIA H100 80GB HBM3'].us / speedup;
    return {
      label: suiteRowLabel('small', config),
      config,
      tokens: work.tokens,
      minLength: config.meanLength,
      maxLength: config.meanLength,
      flops: work.flops,
      bytes: work.bytes,
      medianUs,
      minUs: medianUs,
      maxUs: medianUs,
      tflops: work.flops / medianUs / 1e6,
      gbps: work.bytes / medianUs / 1e3,
      copyFraction: work.bytes / medianUs / 1e3 / 3021,
      ok: i !== 1,
      check: i !== 1 ? 'outputs finite' : 'out[0, 0, 0, 0] = NaN, not finite',
    };
  });
  const settings = {
    suite: 'small' as const,
    matrix: SMALL_MATRIX,
    graphCalls: 20,
    warmup: 5,
    repeats: 50,
    seed: 0,
  };
  return {
    ...sampleReport(card),
    settings,
    rows,
    comparison: compareWithFlashMla({ suite: 'small', backendKind: 'cuda', card, seed: 0, rows }),
  };
}

test('--small’s table, CSV and chart: a b column, µs per call against FlashMLA’s small-batch figures', () => {
  const report = smallReport();
  const lines = formatBenchTable(report).split('\n');
  assert.match(lines[1], /^b = 1, 4, 16 \(b = 1: fixed lengths only\), h_kv = 1, causal, bf16/);
  assert.match(
    lines[1],
    /per call: median of 50 replays of a captured graph of 20 calls after 5 warm-up, divided by 20$/,
  );
  const header = lines.findIndex((line) => line.startsWith(' b  mean len'));
  assert.match(
    lines[header],
    /b\s+mean len\s+h_q\s+s_q\s+varlen\s+µs.*FlashMLA µs\s+vs FlashMLA\s+ok$/,
  );
  // b1/1024/h16: FlashMLA 15.1 µs, ours 15.1 / 1.25 = 12.08 µs.
  assert.deepEqual(lines[header + 2].trim().split(/\s+/).slice(0, 5), [
    '1',
    '1024',
    '16',
    '1',
    'no',
  ]);
  assert.match(lines[header + 2], /\s12\.1\s.*\s15\.1\s+1\.25×\s+ok$/);
  assert.match(lines[header + 3], /17\.5\s+1\.25×\s+FAIL$/);
  assert.equal(
    lines.at(-1),
    'geomean 1.25× over 19 rows, from 1.25× to 1.25×; below 0.97×: 0 rows; below 1.00×: 0 rows; 1 row that failed its check left out',
  );
  const csv = formatBenchCsv(report).split('\n');
  assert.equal(csv.length, 21);
  const last = csv[20].split(',');
  assert.equal(Number(last[CSV_COLUMNS.indexOf('batch')]), 16);
  assert.equal(Number(last[CSV_COLUMNS.indexOf('flashmla_us')]), 76.8);
  assert.ok(Math.abs(Number(last[CSV_COLUMNS.indexOf('vs_flashmla')]) - 1.25) < 1e-12);

  const h200 = formatBenchTable(smallReport('NVIDIA H200'));
  assert.doesNotMatch(h200, /vs FlashMLA\s+ok/);
  assert.match(
    h200,
    /\nvs FlashMLA: not shown: FlashMLA's small-batch figures were measured on NVIDIA H100 80GB HBM3, not on NVIDIA H200$/,
  );

  const elements = allElements(parseXml(renderBenchSvg(report)));
  const byClass = (name: string) => elements.filter((e) => e.attributes.class === name);
  assert.match(byClass('title')[0].text, /^flashmla decode, small batches: NVIDIA H100/);
  assert.equal(byClass('bar-us').length, 20);
  assert.equal(byClass('bar-flashmla-us').length, 20);
  assert.equal(byClass('bar-ratio').length, 20);
  assert.equal(byClass('bar-gbps').length, 0);
  assert.equal(byClass('row-label')[19].text, 'b16/8192/h128/s1/v');
  // Ours is shorter than FlashMLA's on every row (1.25× faster): a lower µs bar.
  const tops = (name: string) => byClass(name).map((e) => Number(e.attributes.y));
  const theirs = tops('bar-flashmla-us');
  assert.ok(tops('bar-us').every((y, i) => y > theirs[i]));
  const h200Chart = allElements(parseXml(renderBenchSvg(smallReport('NVIDIA H200'))));
  assert.equal(h200Chart.filter((e) => e.attributes.class === 'bar-flashmla-us').length, 0);
  assert.equal(h200Chart.filter((e) => e.attributes.class === 'bar-ratio').length, 0);
});

test('on a card FlashMLA was measured on, the chart shows each row’s ratio around 1.0 and FlashMLA’s rates', () => {
  const report = sampleReport();
  const elements = allElements(parseXml(renderBenchSvg(report)));
  const byClass = (name: string) => elements.filter((e) => e.attributes.class === name);
  const bars = byClass('bar-ratio');
  assert.equal(bars.length, report.rows.length);
  assert.deepEqual(
    byClass('ratio-label').map((e) => e.text),
    ['0.91', '0.78', '0.69', '0.70', '0.64', '1.10'],
  );
  // Bars hang from the line at 1.0: down when slower, up when faster; red below 0.97, green
  // above 1, grey where the row failed its check.
  const parity = Number(byClass('parity')[0].attributes.y1);
  const top = (e: (typeof bars)[number]) => Number(e.attributes.y);
  const end = (e: (typeof bars)[number]) => Number(e.attributes.y) + Number(e.attributes.height);
  for (const i of [0, 1, 2, 3, 4]) assert.ok(Math.abs(top(bars[i]) - parity) < 0.2);
  assert.ok(Math.abs(end(bars[5]) - parity) < 0.2);
  assert.ok(end(bars[2]) > end(bars[0]));
  assert.deepEqual(
    bars.map((e) => e.attributes.fill),
    ['#e15759', '#e15759', '#e15759', '#e15759', '#bbbbbb', '#59a14f'],
  );
  // The geomean line sits between the ratios' extremes, its value in the margin.
  const geomeanY = Number(byClass('geomean')[0].attributes.y1);
  assert.ok(geomeanY > parity && geomeanY < end(bars[2]));
  assert.equal(byClass('geomean-value')[0].text, '0.82×');
  assert.match(byClass('panel-title')[0].text, /geomean 0\.82× over 5 rows, 4 below 0\.97×/);
  // FlashMLA's GB/s as ticks on our bars: above ours where it is faster, below where slower.
  const gbpsBars = byClass('bar-gbps');
  const ticks = byClass('ref-gbps');
  assert.equal(ticks.length, report.rows.length);
  assert.equal(byClass('ref-tflops').length, report.rows.length);
  assert.ok(Number(ticks[0].attributes.y1) < Number(gbpsBars[0].attributes.y));
  assert.ok(Number(ticks[5].attributes.y1) > Number(gbpsBars[5].attributes.y));
  assert.match(
    byClass('footer')
      .map((e) => e.text)
      .join(' '),
    /vs FlashMLA: FlashMLA 2025-04, .* measured on NVIDIA H100 80GB HBM3 on 2026-11-28/,
  );
  // Elsewhere: no ratio panel, no ticks, and the footer says why.
  const other = allElements(parseXml(renderBenchSvg(sampleReport('Card & <Co>'))));
  const otherClass = (name: string) => other.filter((e) => e.attributes.class === name);
  assert.equal(otherClass('bar-ratio').length, 0);
  assert.equal(otherClass('ref-gbps').length, 0);
  assert.match(
    otherClass('footer')
      .map((e) => e.text)
      .join(' '),
    /vs FlashMLA: not shown: FlashMLA&apos;s figures were measured on NVIDIA H100 80GB HBM3 and NVIDIA H200, not on Card &amp; &lt;Co&gt;/,
  );
});

test('--small times a captured graph per replay and divides by its calls; the b = 128 suite times calls', () => {
  // The CPU backend with its graph and timer observed: a replay "takes" 6, 7, 8 ms.
  const seen = { captures: 0, replays: 0, disposed: 0, timeOptions: [] as object[] };
  const backend = Object.assign(Object.create(cpuBackend) as Backend, {
    captureGraph(record: () => void) {
      seen.captures++;
      return {
        replay: () => {
          seen.replays++;
          record();
        },
        dispose: () => {
          seen.disposed++;
        },
      };
    },
    time(work: () => void, options: { warmup: number; repeats: number }) {
      seen.timeOptions.push(options);
      for (let i = 0; i < options.warmup + options.repeats; i++) work();
      return Array.from({ length: options.repeats }, (_, i) => 6 + i);
    },
  });
  const matrix = { ...CPU_SMALL_MATRIX, batches: [2], meanLengths: [16], numHeadsQ: [16] };
  const report = runBench(backend, {
    suite: 'small',
    matrix: { ...matrix, varlen: [false] },
    graphCalls: 2,
    warmup: 1,
    repeats: 3,
    seed: 0,
  });
  assert.deepEqual(seen, {
    captures: 1,
    replays: 4,
    disposed: 1,
    timeOptions: [{ warmup: 1, repeats: 3 }],
  });
  const [row] = report.rows;
  assert.equal(row.label, 'b2/16/h16/s1');
  assert.ok(row.ok, row.check);
  // Median 7 ms a replay of 2 calls: 3500 µs a call; 6 and 8 ms give the extremes.
  assert.deepEqual([row.medianUs, row.minUs, row.maxUs], [3500, 3000, 4000]);
  assert.ok(!report.comparison.available);
  assert.match(report.comparison.reason, /CPU backend/);

  const standard = runBench(backend, {
    suite: 'standard',
    matrix: {
      ...STANDARD_MATRIX,
      batch: 2,
      meanLengths: [16],
      numHeadsQ: [16],
      seqlensQ: [1],
      varlen: [false],
    },
    warmup: 1,
    repeats: 3,
    seed: 0,
  });
  assert.equal(seen.captures, 1);
  assert.deepEqual(seen.timeOptions[1], { warmup: 1, repeats: 3 });
  assert.equal(standard.rows[0].label, '16/h16/s1');
  assert.equal(standard.rows[0].medianUs, 7000);
});

test('bench runs end to end on the CPU backend, checked, and repeats its lengths for a seed', () => {
  const settings = {
    suite: 'standard' as const,
    matrix: {
      batch: 2,
      meanLengths: [64],
      numHeadsQ: [16],
      seqlensQ: [1, 2],
      varlen: [false, true],
      causal: true,
      dtype: 'bf16' as const,
      numHeadsKv: 1,
    },
    warmup: 0,
    repeats: 1,
    seed: 5,
  };
  const progress: string[] = [];
  const report = runBench(cpuBackend, settings, {
    onProgress: (done, total, label) => progress.push(`${done}/${total} ${label}`),
  });
  assert.deepEqual(progress, [
    '0/4 64/h16/s1',
    '1/4 64/h16/s1/v',
    '2/4 64/h16/s2',
    '3/4 64/h16/s2/v',
    '4/4 ',
  ]);
  assert.equal(report.copyCeiling, null);
  assert.equal(report.rows.length, 4);
  for (const row of report.rows) {
    assert.ok(row.ok, row.check);
    assert.match(row.check, /against the float64 reference/);
    assert.ok(row.medianUs > 0 && row.tflops > 0 && row.gbps > 0);
    assert.equal(row.copyFraction, null);
    assert.ok(row.minLength >= row.config.seqlenQ);
    const seconds = row.medianUs * 1e-6;
    assert.ok(Math.abs(row.gbps - row.bytes / seconds / 1e9) <= 1e-9 * row.gbps);
    assert.ok(Math.abs(row.tflops - row.flops / seconds / 1e12) <= 1e-9 * row.tflops);
    assert.deepEqual(
      { flops: row.flops, bytes: row.bytes, tokens: row.tokens },
      countWork(
        row.config.varlen ? [row.minLength, row.tokens - row.minLength] : [64, 64],
        row.config.seqlenQ,
        16,
        1,
      ),
    );
  }
  assert.equal(report.rows[0].tokens, 128);
  const again = runBench(cpuBackend, settings);
  assert.deepEqual(
    again.rows.map((r) => [r.tokens, r.minLength, r.maxLength]),
    report.rows.map((r) => [r.tokens, r.minLength, r.maxLength]),
  );
});

test('flashmla bench prints JSON or CSV, writes the chart and saves results under a slugged name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flashmla-bench-'));
  try {
    const tiny = [
      '--backend',
      'cpu',
      '--lengths',
      '64',
      '--heads',
      '16',
      '--sq',
      '1',
      '--repeats',
      '1',
    ];
    const json = runCli([
      'bench',
      ...tiny,
      '--json',
      '--save',
      dir,
      '--plot',
      join(dir, 'chart.svg'),
    ]);
    assert.equal(json.status, 0, json.stderr);
    const report = JSON.parse(json.stdout) as BenchReport;
    assert.equal(report.rows.length, 2);
    assert.match(report.card, /^CPU/);
    assert.equal(report.decodeKernel, null);
    const saved = readdirSync(dir).filter((name) => name.endsWith('.json'));
    assert.equal(saved.length, 1);
    assert.match(saved[0], /^cpu[a-z0-9._-]*-\d{4}-\d{2}-\d{2}\.json$/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, saved[0]), 'utf8')).rows.length, 2);
    const svg = parseXml(readFileSync(join(dir, 'chart.svg'), 'utf8'));
    assert.equal(allElements(svg).filter((e) => e.attributes.class === 'bar-gbps').length, 2);

    const csv = runCli(['bench', ...tiny, '--csv', '--varlen', 'off']);
    assert.equal(csv.status, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[1].split(',').length, CSV_COLUMNS.length);

    const table = runCli(['bench', ...tiny, '--varlen', 'off']);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /CPU backend/);
    assert.match(
      table.stdout,
      /\n\s+64\s+16\s+1\s+no\s+.*ok\n\nvs FlashMLA: not shown: the CPU backend runs here/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('flashmla bench --small runs on the CPU backend, is in --help, and refuses --quick', () => {
  const tiny = ['bench', '--small', '--backend', 'cpu', '--batch', '2', '--lengths', '16'];
  const args = [...tiny, '--heads', '16', '--warmup', '0', '--repeats', '1'];
  const json = runCli([...args, '--json']);
  assert.equal(json.status, 0, json.stderr);
  const report = JSON.parse(json.stdout) as BenchReport;
  assert.ok(report.settings.suite === 'small');
  assert.equal(report.settings.graphCalls, 20);
  assert.deepEqual(
    report.rows.map((row) => [row.label, row.ok]),
    [
      ['b2/16/h16/s1', true],
      ['b2/16/h16/s1/v', true],
    ],
  );
  assert.ok(!report.comparison.available);
  const table = runCli([...args, '--varlen', 'off']);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /\nb\s+mean len\s+h_q/);
  assert.match(table.stdout, /\n2\s+16\s+16\s+1\s+no\s+.*ok\n/);
  assert.match(table.stdout, /\nvs FlashMLA: not shown: the CPU backend runs here/);
  const refused = runCli(['bench', '--small', '--quick', '--backend', 'cpu']);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /--small and --quick cannot be combined/);
  const help = runCli(['bench', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--small\s+the small-batch matrix instead \(20 rows\)/);
  assert.match(help.stdout, /On the CPU backend: the same at b 1, 2 and mean length 64/);
});

test('a row check samples the longest sequence against the reference and scans every output', () => {
  // h_kv = 2: the sample is heads 0 and 3 (KV head 0's group); sequence 1 is the longest; the
  // length-1 sequence has a causal row with nothing to attend (out 0, lse +inf).
  const problem = generateProblem(
    {
      batch: 3,
      seqlenQ: 2,
      numHeadsQ: 8,
      numHeadsKv: 2,
      meanLength: 0,
      lengths: [70, 130, 1],
      causal: true,
    },
    new Random(4),
  );
  const inputs = { ...problem, lengths: problem.lengths };
  const fresh = () => referenceDecode(problem);
  const good = fresh();
  const verdict = checkRow(inputs, good.out, good.lse);
  assert.ok(verdict.ok, verdict.detail);
  assert.match(verdict.detail, /sequence 1 \(length 130\), heads 0 and 3/);

  const wrongSampled = fresh();
  wrongSampled.out.set(wrongSampled.out.get(1, 1, 3, 7) + 0.5, 1, 1, 3, 7);
  const sampled = checkRow(inputs, wrongSampled.out, wrongSampled.lse);
  assert.ok(!sampled.ok);
  assert.match(sampled.detail, /against the float64 reference/);

  const leaked = fresh();
  leaked.out.set(Number.NaN, 0, 1, 5, 100);
  assert.match(
    checkRow(inputs, leaked.out, leaked.lse).detail,
    /out\[0, 1, 5, 100\] = NaN, not finite/,
  );

  const empty = fresh();
  empty.lse.set(0, 2, 6, 0);
  assert.match(
    checkRow(inputs, empty.out, empty.lse).detail,
    /lse\[2, 6, 0\] = 0 where nothing is attended/,
  );
});
