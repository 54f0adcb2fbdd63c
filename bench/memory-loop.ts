/**
 * What the natural decode loop costs in time and device memory. The loop: per decode step, new
 * metadata (never disposed), then one call per layer; a step ends by letting the event loop turn
 * (a server awaits its sampled tokens there). Four variants of the same loop, b = 64, mean length
 * 4096, h_q = 16, h_kv = 1, s_q = 1, causal, bf16:
 *   preallocated    out and lse passed in (what a CUDA-graph user does)
 *   fresh           outputs returned by every call and dropped, never disposed
 *   fresh+dispose   outputs returned by every call and disposed at once
 *   fresh, long     100,000 calls of `fresh`: device memory before, after and at its peak
 * Prints one table, with the card and the date.
 *
 *   node dist/bench/memory-loop.js [--calls-per-run N] [--long-calls N] [--layers N]
 */
import { parseArgs } from 'node:util';
import { flashMlaWithKvcache, getMlaMetadata } from '../src/api/decode.js';
import { HEAD_DIM_V } from '../src/config.js';
import type { DeviceTensor } from '../src/cuda/device-tensor.js';
import { CudaBackend } from '../src/cuda-backend/backend.js';
import { GpuUnavailableError } from '../src/errors.js';
import { Random } from '../src/tensor/random.js';
import { generateOnGpu } from '../src/verify/gpu-problems.js';
import { median } from '../src/verify/run.js';

const { values } = parseArgs({
  options: {
    'calls-per-run': { type: 'string', default: '20000' },
    'long-calls': { type: 'string', default: '100000' },
    layers: { type: 'string', default: '50' },
  },
});
const callsPerRun = Number(values['calls-per-run']);
const longCalls = Number(values['long-calls']);
const layers = Number(values.layers);
const BATCH = 64;
const HEADS_Q = 16;

let backend: CudaBackend;
try {
  backend = CudaBackend.open(0);
} catch (error) {
  if (!(error instanceof GpuUnavailableError)) throw error;
  console.log(`memory-loop skipped: no usable GPU (${error.reason})`);
  process.exit(0);
}
const device = backend.device;
const problem = generateOnGpu(
  backend,
  {
    batch: BATCH,
    seqlenQ: 1,
    numHeadsQ: HEADS_Q,
    numHeadsKv: 1,
    meanLength: 4096,
    varlen: 'off',
    causal: true,
    dtype: 'bf16',
  },
  new Random(1),
);
const preallocatedOut = backend.empty('bf16', [BATCH, 1, HEADS_Q, HEAD_DIM_V]);
const preallocatedLse = backend.empty('float32', [BATCH, HEADS_Q, 1]);

type Variant = 'preallocated' | 'fresh' | 'fresh+dispose';

/** One decode call of the loop; what it returns is dropped by the caller unless disposed here. */
function decodeCall(variant: Variant, metadata: ReturnType<typeof getMlaMetadata>): void {
  const outputs = variant === 'preallocated' ? { out: preallocatedOut, lse: preallocatedLse } : {};
  const result = flashMlaWithKvcache(
    problem.q,
    problem.kCache,
    problem.blockTable,
    problem.cacheSeqlens,
    HEAD_DIM_V,
    metadata.tileSchedulerMetadata,
    metadata.numSplits,
    { causal: true, ...outputs },
  );
  if (variant === 'fresh+dispose') {
    result.out.dispose();
    result.lse.dispose();
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

interface MemorySample {
  usedBytes: number;
  reservedBytes: number;
}

/**
 * Runs `calls` calls of the loop and returns µs per call (wall clock, the GPU drained at both
 * ends); `sample` is called after every step.
 */
async function runLoop(
  variant: Variant,
  calls: number,
  sample?: (memory: MemorySample) => void,
): Promise<number> {
  device.synchronize();
  const started = performance.now();
  for (let done = 0; done < calls; ) {
    const metadata = getMlaMetadata(problem.cacheSeqlens, HEADS_Q, 1);
    for (let layer = 0; layer < layers && done < calls; layer++, done++) {
      decodeCall(variant, metadata);
    }
    await yieldToEventLoop();
    if (sample) sample(device.memoryPoolUsage());
  }
  device.synchronize();
  return ((performance.now() - started) * 1000) / calls;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

const warmupCalls = Math.min(2000, callsPerRun);
for (const variant of ['preallocated', 'fresh', 'fresh+dispose'] as const) {
  await runLoop(variant, warmupCalls);
}
const times: Record<Variant, number[]> = { preallocated: [], fresh: [], 'fresh+dispose': [] };
for (let round = 0; round < 3; round++) {
  for (const variant of ['preallocated', 'fresh', 'fresh+dispose'] as const) {
    times[variant].push(await runLoop(variant, callsPerRun));
  }
}

const before = device.memoryInfo();
const poolBefore = device.memoryPoolUsage();
let peakUsed = poolBefore.usedBytes;
let peakReserved = poolBefore.reservedBytes;
const longUs = await runLoop('fresh', longCalls, (memory) => {
  peakUsed = Math.max(peakUsed, memory.usedBytes);
  peakReserved = Math.max(peakReserved, memory.reservedBytes);
});
for (let turn = 0; turn < 10; turn++) await yieldToEventLoop();
const after = device.memoryInfo();
const poolAfter = device.memoryPoolUsage();

const base = median(times.preallocated);
const date = new Date().toISOString().slice(0, 10);
console.log(`${backend.description}, ${date}`);
console.log(
  `b = ${BATCH}, mean length 4096, h_q = ${HEADS_Q}, h_kv = 1, s_q = 1, causal, bf16; ` +
    `${layers} calls a step, new metadata each step (never disposed), event loop turned between steps`,
);
console.log('');
console.log('loop                  µs/call (median of 3 runs)   vs preallocated');
for (const variant of ['preallocated', 'fresh', 'fresh+dispose'] as const) {
  const us = median(times[variant]);
  const change = variant === 'preallocated' ? '' : `${(((us - base) / base) * 100).toFixed(1)}%`;
  console.log(
    `${variant.padEnd(22)}${us.toFixed(1).padStart(8)} (${times[variant].map((t) => t.toFixed(1)).join(', ')})`.padEnd(
      51,
    ) + change.padStart(8),
  );
}
console.log(`fresh, ${longCalls} calls`.padEnd(22) + longUs.toFixed(1).padStart(8));
console.log('');
console.log(`device memory over ${longCalls} calls of 'fresh', never disposed:`);
console.log(
  `  used on the device (cuMemGetInfo): before ${gib(before.totalBytes - before.freeBytes)}, after ${gib(after.totalBytes - after.freeBytes)}`,
);
console.log(
  `  memory pool: in use before ${gib(poolBefore.usedBytes)}, peak ${gib(peakUsed)}, after ${gib(poolAfter.usedBytes)}; ` +
    `reserved before ${gib(poolBefore.reservedBytes)}, peak ${gib(peakReserved)}, after ${gib(poolAfter.reservedBytes)}`,
);
console.log(
  `  each call returns ${gib(BATCH * HEADS_Q * HEAD_DIM_V * 2 + BATCH * HEADS_Q * 4)} of outputs: ${gib(longCalls * (BATCH * HEADS_Q * HEAD_DIM_V * 2 + BATCH * HEADS_Q * 4))} in all`,
);
(preallocatedOut as DeviceTensor).dispose();
(preallocatedLse as DeviceTensor).dispose();
problem.dispose();
