/**
 * Host cost of one decode call (validation, parameter blocks, two launches through koffi), for
 * the performance notes: many calls of a tiny problem enqueued back to back, wall clock per
 * call once the JIT has warmed up, next to the GPU time of the same call measured with events.
 * Run on a GPU host: node dist/bench/host-overhead.js
 */
import { flashMlaWithKvcache, getMlaMetadata } from '../src/api/decode.js';
import { checkDecodeArguments } from '../src/api/validate.js';
import { HEAD_DIM_V } from '../src/config.js';
import { captureGraph } from '../src/cuda/graph.js';
import { CudaBackend } from '../src/cuda-backend/backend.js';
import { launchDecode } from '../src/cuda-backend/launch.js';
import { CombineParamsLayout, ParamBlock } from '../src/cuda-backend/layout.js';
import type { CudaMlaMetadata } from '../src/cuda-backend/metadata.js';
import { Random } from '../src/tensor/random.js';
import { generateOnGpu } from '../src/verify/gpu-problems.js';
import { median } from '../src/verify/run.js';

const backend = CudaBackend.open(0);
const problem = generateOnGpu(
  backend,
  {
    batch: 4,
    seqlenQ: 1,
    numHeadsQ: 16,
    numHeadsKv: 1,
    meanLength: 1024,
    varlen: 'off',
    causal: true,
    dtype: 'bf16',
  },
  new Random(1),
);
const out = backend.empty('bf16', [4, 1, 16, HEAD_DIM_V]);
const lse = backend.empty('float32', [4, 16, 1]);
const metadata = getMlaMetadata(problem.cacheSeqlens, 16, 1);
const call = () =>
  flashMlaWithKvcache(
    problem.q,
    problem.kCache,
    problem.blockTable,
    problem.cacheSeqlens,
    HEAD_DIM_V,
    metadata.tileSchedulerMetadata,
    metadata.numSplits,
    {
      causal: true,
      out,
      lse,
    },
  );

for (let i = 0; i < 2000; i++) call();
backend.synchronize();
const calls = 5000;
const start = performance.now();
for (let i = 0; i < calls; i++) call();
const enqueued = performance.now();
backend.synchronize();
const done = performance.now();
const gpu = median(backend.time(call, { warmup: 10, repeats: 200 }));

/** Host µs per call of `work`, enqueued back to back after a warm-up. */
function hostMicros(work: () => void, n = 5000): number {
  for (let i = 0; i < 1000; i++) work();
  backend.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) work();
  const t1 = performance.now();
  backend.synchronize();
  return ((t1 - t0) * 1000) / n;
}
const shape = checkDecodeArguments(
  problem.q,
  problem.kCache,
  problem.blockTable,
  problem.cacheSeqlens,
  HEAD_DIM_V,
  { causal: true },
);
const { pointers } = metadata as CudaMlaMetadata;
const combine = backend.kernels.get('flashmla_combine_bf16');
const params = new ParamBlock(CombineParamsLayout).bytes; // all zero: batch 0, the kernel returns at once
const parts: [string, () => void][] = [
  [
    'validation only (checkDecodeArguments)',
    () =>
      checkDecodeArguments(
        problem.q,
        problem.kCache,
        problem.blockTable,
        problem.cacheSeqlens,
        HEAD_DIM_V,
        { causal: true },
      ),
  ],
  [
    'one plain launch (cuLaunchKernel), prebuilt params',
    () => combine.launch({ grid: [1, 1, 1], block: [128, 1, 1], params }),
  ],
  [
    'one PDL launch (cuLaunchKernelEx), prebuilt params',
    () =>
      combine.launch({
        grid: [1, 1, 1],
        block: [128, 1, 1],
        params,
        programmaticDependentLaunch: true,
      }),
  ],
  [
    'launchDecode (both kernels, params built)',
    () =>
      launchDecode(backend.kernels, backend.stream, {
        shape,
        q: problem.q,
        kCache: problem.kCache,
        blockTable: problem.blockTable,
        cacheSeqlens: problem.cacheSeqlens.ptr,
        tileSchedulerMetadata: pointers.tileSchedulerMetadata,
        numSplits: pointers.numSplits,
        numSmParts: metadata.numSmParts,
        out: out,
        lse: lse.ptr,
        oAccum: pointers.oAccum,
        lseAccum: pointers.lseAccum,
      }),
  ],
];
console.log(`${backend.description}`);
console.log(
  `host enqueue per call: ${(((enqueued - start) * 1000) / calls).toFixed(1)} µs (${calls} calls, warm JIT)`,
);
console.log(`wall per call incl. GPU drain: ${(((done - start) * 1000) / calls).toFixed(1)} µs`);
console.log(`event-timed per call (median of 200): ${(gpu * 1000).toFixed(1)} µs`);
for (const [name, work] of parts) console.log(`  ${name}: ${hostMicros(work).toFixed(1)} µs`);
// The GPU time alone: the same call captured in a CUDA graph, replays timed with events.
const graph = captureGraph(backend.stream, call).instantiate();
const replay = () => graph.launch(backend.stream);
console.log(
  `graph replay, event-timed (GPU time of one call): ${(median(backend.time(replay, { warmup: 10, repeats: 200 })) * 1000).toFixed(1)} µs`,
);
console.log(`graph replay, host enqueue: ${hostMicros(replay).toFixed(1)} µs`);
