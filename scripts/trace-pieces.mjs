#!/usr/bin/env node
// Where a decode CTA's time goes, stage by stage: a timeline of every CTA's pieces in one launch
// (csrc/piece_trace.cuh), for performance work.
//
// Where nvcc is (no GPU needed), build the traced decode kernel into ab/ (git-ignored):
//   node scripts/trace-pieces.mjs build [nvcc flags...]
// Then on the GPU host (after `source .device/setup.sh`, with ab/ carried), trace one benchmark
// row (b = 128, h_kv = 1, bf16, causal, lengths of seed 0 as in `flashmla bench`):
//   node scripts/trace-pieces.mjs run --lengths 4096 --heads 128 --sq 2 --varlen off [--json F]
//     [--cubin ab/trace.cubin] [--dist ab/NAME/dist]
// `run` swaps the traced cubin into dist/kernels (or the kernels of the build --dist names, e.g.
// a snapshot of scripts/ab-variants.sh whose host code the traced kernel needs) for the run and
// puts the library's back after. FLASHMLA_DECODE_KERNEL picks the decode variant as usual.
// The row is checked and timed as `flashmla bench` does (one checked call, 5 warm-up, 30 timed);
// launch kTracedLaunch, one of the timed calls, is traced. It prints the clock the kernel ran at
// (SM clocks over global-timer nanoseconds) and the median cycles of each stage of a piece; --json
// also writes every CTA's raw events, which `summary FILE` sums up again anywhere (no GPU needed).
// One row per process: the launch count is the module's.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tracedCubin = join(root, 'ab', 'trace.cubin');
const kTracedLaunch = 12;
// csrc/piece_trace.cuh
const EVENTS = [
  'pieceStart',
  'qReady',
  'firstPairDone',
  'pairsDone',
  'rowSumsReady',
  'lseDone',
  'staged',
  'pieceDone',
];
const MAX_CTAS = 1024;
const MAX_PIECES = 16;

function build(extraFlags) {
  mkdirSync(dirname(tracedCubin), { recursive: true });
  const nvcc = process.env.NVCC ?? 'nvcc';
  const args = [
    '-gencode=arch=compute_90a,code=sm_90a',
    '-O3',
    '-std=c++17',
    '--cubin',
    '-lineinfo',
    `-DFLASHMLA_TRACE=${kTracedLaunch}`,
    '-I',
    join(root, 'csrc'),
    '-o',
    tracedCubin,
    join(root, 'csrc', 'decode_seesaw_sm90.cu'),
  ];
  const result = spawnSync(nvcc, [...args, ...extraFlags], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  console.log(`built ${tracedCubin} (traces launch ${kTracedLaunch})`);
}

const median = (xs) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function run(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      lengths: { type: 'string', default: '4096' },
      heads: { type: 'string', default: '128' },
      sq: { type: 'string', default: '1' },
      varlen: { type: 'string', default: 'off' },
      json: { type: 'string' },
      cubin: { type: 'string', default: tracedCubin },
      dist: { type: 'string', default: join(root, 'dist') },
    },
  });
  const dist = resolve(values.dist);
  const libraryCubin = join(dist, 'kernels', 'decode_seesaw_sm90.cubin');
  if (!existsSync(values.cubin)) throw new Error(`${values.cubin} is missing: run \`build\` first`);
  const row = {
    batch: 128,
    meanLength: Number(values.lengths),
    numHeadsQ: Number(values.heads),
    numHeadsKv: 1,
    seqlenQ: Number(values.sq),
    varlen: values.varlen === 'on',
    causal: true,
    dtype: 'bf16',
  };
  const saved = `${libraryCubin}.library`; // beside it: ab/ need not exist when --cubin is elsewhere
  copyFileSync(libraryCubin, saved);
  copyFileSync(values.cubin, libraryCubin);
  let arrays;
  let result;
  try {
    const { openBackend } = await import(pathToFileURL(join(dist, 'src/api/open-backend.js')).href);
    const { measureRow } = await import(pathToFileURL(join(dist, 'src/cli/bench/measure.js')).href);
    const backend = openBackend({ backend: 'cuda' });
    result = measureRow(backend, row, 0, { warmup: 5, repeats: 30 }, null);
    arrays = await readTrace(backend);
  } finally {
    copyFileSync(saved, libraryCubin);
    rmSync(saved);
  }
  const label = `${row.meanLength}/${row.numHeadsQ}/${row.seqlenQ} ${row.varlen ? 'varlen' : 'fixed'}`;
  console.log(
    `${label}: ${result.medianUs.toFixed(1)} µs (median of 30), check ${result.ok ? 'ok' : 'FAILED'}`,
  );
  const ctas = decode(arrays);
  summarise(ctas);
  if (values.json)
    writeFileSync(values.json, `${JSON.stringify({ row, medianUs: result.medianUs, ctas })}\n`);
}

/** The trace arrays of the decode module, read with cuModuleGetGlobal (they have C names). */
async function readTrace(backend) {
  const { default: koffi } = await import('koffi');
  const cu = koffi.load('libcuda.so.1');
  const getGlobal = cu.func(
    'int cuModuleGetGlobal_v2(_Out_ uint64_t *dptr, _Out_ uint64_t *bytes, uint64_t hmod, const char *name)',
  );
  const copyToHost = cu.func('int cuMemcpyDtoH_v2(_Out_ uint8_t *dst, uint64_t src, size_t n)');
  // The library keeps its modules private; a development script may look inside.
  const module = backend.kernels.modules.find((m) => {
    try {
      m.getFunction('flashmla_decode_seesaw_bf16');
      return true;
    } catch {
      return false;
    }
  });
  const read = (name) => {
    const address = new BigUint64Array(1);
    const bytes = new BigUint64Array(1);
    const rc = getGlobal(address, bytes, module.handle, name);
    if (rc !== 0) throw new Error(`cuModuleGetGlobal(${name}) returned ${rc}: not a traced build?`);
    const buffer = new Uint8Array(Number(bytes[0]));
    const rc2 = copyToHost(buffer, address[0], buffer.length);
    if (rc2 !== 0) throw new Error(`cuMemcpyDtoH(${name}) returned ${rc2}`);
    return new BigInt64Array(buffer.buffer);
  };
  return {
    events: read('flashmla_trace_events'),
    pieces: read('flashmla_trace_pieces'),
    ctas: read('flashmla_trace_ctas'),
  };
}

/** Per traced CTA: clock, cycles, and each piece's events in cycles from the CTA's start. */
function decode({ events, pieces, ctas }) {
  const out = [];
  // The CTAs with a start and an end (the rest were not traced, or had no part).
  const traced = [...Array(MAX_CTAS).keys()].filter(
    (c) => ctas[c * 4] !== 0n && ctas[c * 4 + 2] !== 0n,
  );
  // Global-timer nanoseconds count from the epoch (beyond a double's exact range): keep them
  // relative to the earliest CTA's start.
  const firstNs = BigInt64Array.from(traced, (c) => ctas[c * 4 + 1]).sort()[0] ?? 0n;
  for (const c of traced) {
    const [start, startNs, end, endNs] = ctas.subarray(c * 4, c * 4 + 4);
    const cta = {
      cta: c,
      cycles: Number(end - start),
      ns: Number(endNs - startNs),
      startNs: Number(startNs - firstNs),
      endNs: Number(endNs - firstNs),
      pieces: [],
    };
    for (let i = 0; i < MAX_PIECES; i++) {
      const info = pieces[c * MAX_PIECES + i];
      const at = (wg, e) => events[((c * 2 + wg) * MAX_PIECES + i) * EVENTS.length + e];
      if (at(0, 0) === 0n) break;
      const stages = [0, 1].map((wg) =>
        Object.fromEntries(
          EVENTS.map((name, e) => [name, at(wg, e) === 0n ? null : Number(at(wg, e) - start)]),
        ),
      );
      cta.pieces.push({
        batch: Number(info >> 32n),
        blocks: Number((info & 0xffffffffn) >> 1n),
        final: (info & 1n) === 1n,
        warpgroups: stages,
      });
    }
    out.push(cta);
  }
  return out;
}

/** The summary of a trace that `run --json` saved (plain or gzipped), anywhere. */
function summariseFile(path) {
  const raw = readFileSync(path);
  const { row, medianUs, ctas } = JSON.parse(
    (path.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8'),
  );
  const label = `${row.meanLength}/${row.numHeadsQ}/${row.seqlenQ} ${row.varlen ? 'varlen' : 'fixed'}`;
  console.log(`${label}: ${medianUs.toFixed(1)} µs (median of 30)`);
  summarise(ctas);
}

function summarise(ctas) {
  const ghz = median(ctas.map((c) => c.cycles / c.ns));
  const pieces = ctas.flatMap((c) => c.pieces.map((p, i) => ({ ...p, index: i, cta: c })));
  console.log(
    `${ctas.length} CTAs at ${ghz.toFixed(3)} GHz (median; SM clocks over global-timer ns), ` +
      `${(pieces.length / ctas.length).toFixed(2)} pieces per CTA, kernel ${median(ctas.map((c) => c.cycles))} cycles`,
  );
  if (ctas.every((c) => c.startNs !== undefined)) {
    // Traces saved before the CTAs' start and end were kept have no span.
    const ends = ctas.map((c) => c.endNs / 1000);
    const starts = ctas.map((c) => c.startNs / 1000);
    console.log(
      `  span ${Math.max(...ends).toFixed(1)} µs from the first CTA's start to the last one's end; ` +
        `starts within ${Math.max(...starts).toFixed(1)} µs; ends from ${Math.min(...ends).toFixed(1)} ` +
        `(median ${median(ends).toFixed(1)})`,
    );
  }
  const stage = (select, from, to) =>
    median(
      select
        .map((p) => p.warpgroups[0])
        .filter((s) => s[from] !== null && s[to] !== null)
        .map((s) => s[to] - s[from]),
    );
  const perPair = median(
    pieces
      .filter((p) => p.blocks > 2)
      .map((p) => {
        const s = p.warpgroups[0];
        return (s.pairsDone - s.firstPairDone) / (Math.ceil(p.blocks / 2) - 1);
      }),
  );
  const later = pieces.filter((p) => p.index > 0);
  const rows = [
    [
      'first piece: start to Q ready',
      stage(
        pieces.filter((p) => p.index === 0),
        'pieceStart',
        'qReady',
      ),
    ],
    ['later pieces: start to Q ready', stage(later, 'pieceStart', 'qReady')],
    ['first pair', stage(pieces, 'qReady', 'firstPairDone')],
    ['each later pair (mean within a piece)', perPair],
  ];
  for (const [kind, select] of [
    ['final', pieces.filter((p) => p.final)],
    ['split', pieces.filter((p) => !p.final)],
  ]) {
    if (select.length === 0) continue;
    rows.push([
      `${kind} (${select.length}): pairs done to row sums`,
      stage(select, 'pairsDone', 'rowSumsReady'),
    ]);
    rows.push([`${kind}: row sums to lse written`, stage(select, 'rowSumsReady', 'lseDone')]);
    if (kind === 'final') rows.push([`${kind}: staging`, stage(select, 'lseDone', 'staged')]);
    rows.push([
      `${kind}: store`,
      stage(select, kind === 'final' ? 'staged' : 'lseDone', 'pieceDone'),
    ]);
    rows.push([`${kind}: pairs done to piece done`, stage(select, 'pairsDone', 'pieceDone')]);
  }
  const boundary = median(
    ctas.map(
      (c) =>
        c.pieces.reduce((sum, p) => {
          const s = p.warpgroups[0];
          return sum + (s.qReady - s.pieceStart) + (s.pieceDone - s.pairsDone);
        }, 0) / c.cycles,
    ),
  );
  rows.push([
    'share of the kernel outside pairs (Q + end of piece)',
    `${(100 * boundary).toFixed(1)}%`,
  ]);
  for (const [name, value] of rows) {
    console.log(`  ${name.padEnd(52)} ${typeof value === 'number' ? Math.round(value) : value}`);
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'build') build(rest);
else if (mode === 'run') await run(rest);
else if (mode === 'summary' && rest.length === 1) summariseFile(rest[0]);
else {
  console.error(
    'usage: scripts/trace-pieces.mjs build | run [--lengths L --heads H --sq S --varlen on|off] [--json FILE] | summary FILE',
  );
  process.exit(2);
}
