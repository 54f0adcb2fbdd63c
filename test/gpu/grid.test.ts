/**
 * FlashMLA's own test grid on the GPU, checked against the GPU oracle (itself checked against
 * the float64 reference in kernels.test.ts): b x s_q x length x (h_q, h_kv) x varlen x causal,
 * bf16: 4 x 3 x 3 x 16 head layouts x 2 x 2 = 2304 configurations. Caches are generated on the GPU and shared by the configurations
 * that can share them.
 */
import assert from 'node:assert/strict';
import { HEAD_DIM_K } from '../../src/config.js';
import { DeviceTensor } from '../../src/cuda/device-tensor.js';
import { launchFillNormal } from '../../src/cuda-backend/launch.js';
import { Random } from '../../src/tensor/random.js';
import { comparePrecision } from '../../src/verify/precision.js';
import { decodeOnGpu, generateOnGpu, gpuTest, referenceOnGpu, SUITE_SEED } from './support.js';

const BATCHES = [1, 2, 6, 64];
const SEQLENS_Q = [1, 2, 4];
const LENGTHS = [20, 140, 4096];
const HEADS_Q = [1, 3, 9, 63, 64, 126, 128];
const HEADS_KV = [1, 2, 3, 8];

gpuTest("FlashMLA's grid: 2304 configurations against the GPU oracle", (backend) => {
  const random = new Random(SUITE_SEED);
  let checked = 0;
  const started = Date.now();
  for (const batch of BATCHES) {
    for (const meanLength of LENGTHS) {
      for (const varlen of ['off', 'normal'] as const) {
        for (const numHeadsKv of HEADS_KV) {
          // One cache for every (s_q, h_q, causal) sharing it; q is redrawn for each.
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
            },
            random,
          );
          cache.q.dispose();
          for (const seqlenQ of SEQLENS_Q) {
            for (const numHeadsQ of HEADS_Q.filter((h) => h % numHeadsKv === 0)) {
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
                scale: 0.1,
                clamp: 1,
              });
              for (const causal of [false, true]) {
                const problem = { ...cache, q, causal };
                const label = `b=${batch} len=${meanLength} varlen=${varlen} s_q=${seqlenQ} h_q=${numHeadsQ} h_kv=${numHeadsKv} causal=${causal} (seed ${SUITE_SEED})`;
                const result = decodeOnGpu(backend, problem, label);
                result.metadata.dispose();
                const report = comparePrecision(result, referenceOnGpu(backend, problem));
                assert.ok(report.ok, `${label}\n${report.failures.join('\n')}`);
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
    `# grid: ${checked} configurations in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});
