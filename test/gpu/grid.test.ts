/**
 * FlashMLA's own test grid on the GPU, checked against the GPU oracle (itself checked against
 * the float64 reference in kernels.test.ts) under the precision rule, with error scales bounded
 * from the data: b x s_q x length x (h_q, h_kv) x varlen x causal, bf16: 4 x 3 x 3 x 16 head
 * layouts x 2 x 2 = 2304 configurations. Caches are generated on the GPU and shared by the
 * configurations that can share them. FlashMLA ran its grid on gentle data only; here each cache
 * is gentle or N(0,1) at random, and each q over an N(0,1) cache is steep (at one of three softmax
 * scales) or large (x10, x100).
 */
import assert from 'node:assert/strict';
import { HEAD_DIM_K } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { launchFillNormal } from '../../src/cuda-backend/launch.js';
import { Random } from '../../src/tensor/random.js';
import { comparePrecision } from '../../src/verify/precision.js';
import { DATA_KINDS, type DataKind } from '../../src/verify/problems.js';
import {
  decodeOnGpu,
  generateOnGpu,
  gpuTest,
  keyMaximaOnGpu,
  referenceOnGpu,
  SUITE_SEED,
} from './support.js';

const BATCHES = [1, 2, 6, 64];
const SEQLENS_Q = [1, 2, 4];
const LENGTHS = [20, 140, 4096];
const HEADS_Q = [1, 3, 9, 63, 64, 126, 128];
const HEADS_KV = [1, 2, 3, 8];
/** The kinds of q over an N(0,1) cache, with their softmax scales. */
const STEEP_OR_LARGE: readonly { data: DataKind; softmaxScale: number }[] = [
  { data: 'steep', softmaxScale: HEAD_DIM_K ** -0.5 },
  { data: 'steep', softmaxScale: 192 ** -0.5 },
  { data: 'steep', softmaxScale: 0.5 },
  { data: 'q10', softmaxScale: HEAD_DIM_K ** -0.5 },
  { data: 'q100', softmaxScale: HEAD_DIM_K ** -0.5 },
];

gpuTest("FlashMLA's grid: 2304 configurations against the GPU oracle", (backend) => {
  const random = new Random(SUITE_SEED);
  let checked = 0;
  const worst = { element: 0, row: 0, tensor: 0, lse: 0 };
  const started = Date.now();
  for (const batch of BATCHES) {
    for (const meanLength of LENGTHS) {
      for (const varlen of ['off', 'normal'] as const) {
        for (const numHeadsKv of HEADS_KV) {
          // One cache for every (s_q, h_q, causal) sharing it; q is redrawn for each.
          const gentle = random.uniform() < 0.5;
          const cache = generateOnGpu(
            backend,
            {
              batch,
              seqlenQ: Math.max(...SEQLENS_Q),
              numHeadsQ: numHeadsKv,
              numHeadsKv,
              meanLength,
              varlen,
              causal: false,
              dtype: 'bf16',
              data: gentle ? 'gentle' : 'steep',
            },
            random,
          );
          cache.q.dispose();
          const maxima = keyMaximaOnGpu(cache);
          for (const seqlenQ of SEQLENS_Q) {
            for (const numHeadsQ of HEADS_Q.filter((h) => h % numHeadsKv === 0)) {
              const kind = gentle
                ? { data: 'gentle' as const, softmaxScale: HEAD_DIM_K ** -0.5 }
                : random.pick(STEEP_OR_LARGE);
              const q = DeviceTensor.empty(backend.device, 'bf16', [
                batch,
                seqlenQ,
                numHeadsQ,
                HEAD_DIM_K,
              ]);
              launchFillNormal(backend.kernels, backend.stream, {
                dst: q.ptr,
                count: batch * seqlenQ * numHeadsQ * HEAD_DIM_K,
                dtype: 'bf16',
                seed: BigInt(random.nextUint32()),
                ...DATA_KINDS[kind.data].q,
              });
              for (const causal of [false, true]) {
                const problem = { ...cache, q, causal, softmaxScale: kind.softmaxScale };
                const label = `b=${batch} len=${meanLength} varlen=${varlen} s_q=${seqlenQ} h_q=${numHeadsQ} h_kv=${numHeadsKv} causal=${causal} data=${kind.data} scale=${kind.softmaxScale.toPrecision(4)} (seed ${SUITE_SEED})`;
                const result = decodeOnGpu(backend, problem, label);
                result.metadata.dispose();
                const report = comparePrecision(result, referenceOnGpu(backend, problem, maxima));
                assert.ok(report.ok, `${label}\n${report.failures.join('\n')}`);
                for (const check of ['element', 'row', 'tensor', 'lse'] as const)
                  worst[check] = Math.max(worst[check], report[check].ratio);
                checked++;
              }
              q.dispose();
            }
          }
          cache.dispose();
        }
      }
    }
  }
  assert.equal(checked, 2304);
  console.log(
    `# grid: ${checked} configurations in ${((Date.now() - started) / 1000).toFixed(1)} s; worst error/bound (bounded scales): ${JSON.stringify(worst)}`,
  );
});
