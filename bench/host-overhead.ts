/**
 * Host cost of the decode path: how long the host spends enqueuing one flashMlaWithKvcache call,
 * and one replay of a captured CUDA graph, next to the GPU time of the same work. The numbers
 * go in docs/perf-notes.md with the card and the date.
 *
 * Host time is taken over short bursts of calls enqueued back to back, with an untimed
 * synchronize between bursts. A long run of calls would fill the GPU's launch queue, after which
 * every enqueue waits for the GPU and the "host" figure is really the GPU's time per call.
 *
 *   on a GPU host:   node dist/bench/host-overhead.js
 *   without a GPU:   node dist/bench/host-overhead.js --fake-driver
 *
 * --fake-driver builds bench/fake-cuda/libcuda.c (cc and the CUDA toolkit's cuda.h) into
 * dist/fake-cuda/ and runs against it: the JavaScript and koffi part of the cost only, since that
 * driver does no work.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { flashMlaWithKvcache, getMlaMetadata } from '../src/api/decode.js';
import { checkDecodeCall } from '../src/api/validate.js';
import { HEAD_DIM_V } from '../src/config.js';
import { CudaBackend } from '../src/cuda-backend/backend.js';
import { launchDecode } from '../src/cuda-backend/launch.js';
import { CombineParamsLayout, ParamBlock } from '../src/cuda-backend/layout.js';
import type { CudaMlaMetadata } from '../src/cuda-backend/metadata.js';
import { Random } from '../src/tensor/random.js';
import { generateOnGpu } from '../src/verify/gpu-problems.js';
import { median } from '../src/verify/run.js';

const BURST = 50;
const BURSTS = 300;
/** Bursts run first, untimed, so that the JIT has compiled the path. */
const WARMUP_BURSTS = 50;
const FAKE_DRIVER_DIR = fileURLToPath(new URL('../fake-cuda/', import.meta.url));

if (process.argv.includes('--fake-driver') && process.env.FLASHMLA_FAKE_DRIVER !== '1') {
  process.exit(runWithFakeDriver());
}

/** Builds the stub libcuda.so.1 and runs this script again with it first on the library path. */
function runWithFakeDriver(): number {
  mkdirSync(FAKE_DRIVER_DIR, { recursive: true });
  const cudaHome = process.env.CUDA_HOME ?? '/usr/local/cuda';
  const source = fileURLToPath(new URL('../../bench/fake-cuda/libcuda.c', import.meta.url));
  const build = spawnSync(
    process.env.CC ?? 'cc',
    [
      '-shared',
      '-fPIC',
      '-O2',
      `-I${cudaHome}/include`,
      '-o',
      `${FAKE_DRIVER_DIR}libcuda.so.1`,
      source,
    ],
    { stdio: 'inherit' },
  );
  if (build.status !== 0) return build.status ?? 1;
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: {
      ...process.env,
      FLASHMLA_FAKE_DRIVER: '1',
      LD_LIBRARY_PATH: [FAKE_DRIVER_DIR, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
    },
  });
  return run.status ?? 1;
}

const backend = CudaBackend.open(0);
const config = {
  batch: 4,
  seqlenQ: 1,
  numHeadsQ: 16,
  numHeadsKv: 1,
  meanLength: 1024,
  varlen: 'off' as const,
  causal: true,
  dtype: 'bf16' as const,
};
const problem = generateOnGpu(backend, config, new Random(1));
const { q, kCache, blockTable, cacheSeqlens } = problem;
const out = backend.empty('bf16', [config.batch, 1, config.numHeadsQ, HEAD_DIM_V]);
const lse = backend.empty('float32', [config.batch, config.numHeadsQ, 1]);
const metadata = getMlaMetadata(cacheSeqlens, config.numHeadsQ, 1) as CudaMlaMetadata;
const options = { causal: true, out, lse };
const decode = () =>
  flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, options);

/**
 * Host µs per call of `work` over bursts of BURST calls, the GPU drained in between (untimed):
 * the median burst (the typical cost) and the mean (garbage collection and the odd slow burst
 * included).
 */
function hostMicros(work: () => void): { median: number; mean: number } {
  const perCall: number[] = [];
  for (let burst = 0; burst < WARMUP_BURSTS + BURSTS; burst++) {
    const start = performance.now();
    for (let i = 0; i < BURST; i++) work();
    const elapsed = performance.now() - start;
    backend.synchronize();
    if (burst >= WARMUP_BURSTS) perCall.push((elapsed * 1000) / BURST);
  }
  const mean = perCall.reduce((sum, x) => sum + x, 0) / perCall.length;
  return { median: median(perCall), mean };
}

/** GPU µs of `work`, timed with events around each run: median and mean of 200 runs. */
function gpuMicros(work: () => void): { median: number; mean: number } {
  const times = backend.time(work, { warmup: 20, repeats: 200 }).map((ms) => ms * 1000);
  return { median: median(times), mean: times.reduce((sum, x) => sum + x, 0) / times.length };
}

const call = checkDecodeCall(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, options);
const combine = backend.kernels.get('flashmla_combine_bf16');
const emptyCombine = new ParamBlock(CombineParamsLayout).bytes; // batch 0: the kernel returns at once
const oneDecode = backend.captureGraph(decode);
const layers = 4;
const step = backend.captureGraph(() => {
  getMlaMetadata(cacheSeqlens, config.numHeadsQ, 1, { into: metadata });
  for (let layer = 0; layer < layers; layer++) decode();
});

// A first, discarded measurement: the garbage of setting up the problem is collected here, not
// in the first row.
hostMicros(decode);
const rows: [string, { median: number; mean: number }, string][] = [
  ['decode call (flashMlaWithKvcache, out/lse given)', hostMicros(decode), '<= 15'],
  [
    "  the same with FlashMLA's two metadata tensors",
    hostMicros(() =>
      flashMlaWithKvcache(
        q,
        kCache,
        blockTable,
        cacheSeqlens,
        HEAD_DIM_V,
        metadata.tileSchedulerMetadata,
        metadata.numSplits,
        options,
      ),
    ),
    '',
  ],
  [
    '  of which validation (checkDecodeCall)',
    hostMicros(() =>
      checkDecodeCall(q, kCache, blockTable, cacheSeqlens, HEAD_DIM_V, metadata, options),
    ),
    '',
  ],
  [
    '  of which the two launches, parameter blocks built',
    hostMicros(() =>
      launchDecode(backend.kernels, backend.stream, {
        variant: backend.decodeVariant,
        shape: call.shape,
        q,
        kCache,
        blockTable,
        cacheSeqlens: cacheSeqlens.ptr,
        tileSchedulerMetadata: metadata.pointers.tileSchedulerMetadata,
        numSplits: metadata.pointers.numSplits,
        numSmParts: metadata.numSmParts,
        out,
        lse: lse.ptr,
        oAccum: metadata.workspace.oAccumPtr,
        lseAccum: metadata.workspace.lseAccumPtr,
        errors: 0n,
      }),
    ),
    '',
  ],
  [
    '  one cuLaunchKernel, parameter block prebuilt',
    hostMicros(() => combine.launch({ grid: [1, 1, 1], block: [128, 1, 1], params: emptyCombine })),
    '',
  ],
  [
    '  one cuLaunchKernelEx (PDL), parameter block prebuilt',
    hostMicros(() =>
      combine.launch({
        grid: [1, 1, 1],
        block: [128, 1, 1],
        params: emptyCombine,
        programmaticDependentLaunch: true,
      }),
    ),
    '',
  ],
  [
    'getMlaMetadata into existing metadata (scheduler kernel)',
    hostMicros(() => getMlaMetadata(cacheSeqlens, config.numHeadsQ, 1, { into: metadata })),
    '',
  ],
  ['graph replay: one decode call', hostMicros(() => oneDecode.replay()), '<= 5'],
  [`graph replay: a step (metadata + ${layers} decode calls)`, hostMicros(() => step.replay()), ''],
  ['GPU time of one decode call (events)', gpuMicros(decode), ''],
  ['GPU time of one graph replay of it (events)', gpuMicros(() => oneDecode.replay()), ''],
];

const width = Math.max(...rows.map(([what]) => what.length));
const number = (micros: number) => micros.toFixed(1).padStart(6);
console.log(`flashmla host cost: ${backend.description}, ${new Date().toISOString().slice(0, 10)}`);
console.log(
  `problem: b=${config.batch} s_q=1 h_q=${config.numHeadsQ} h_kv=1 L=${config.meanLength} causal bf16; ` +
    `host time over ${BURSTS} bursts of ${BURST} calls; Node ${process.versions.node}`,
);
console.log(`${'µs per call'.padEnd(width)}  median    mean  target`);
for (const [what, micros, target] of rows) {
  console.log(`${what.padEnd(width)}  ${number(micros.median)}  ${number(micros.mean)}  ${target}`);
}

oneDecode.dispose();
step.dispose();
metadata.dispose();
out.dispose();
lse.dispose();
problem.dispose();
