/**
 * The small workload compute-sanitizer runs (scripts/gpu-suite.sh): the scheduler, decode (with
 * and without splits, causal, several row tiles, fp16), combine and the GPU oracle on the
 * smallest shapes of the grid, each checked against the float64 reference. Exit code 1 on a
 * mismatch; the sanitizer's own exit code reports memory errors and races.
 */

import { CudaBackend } from '../../src/cuda-backend/backend.js';
import { referenceDecode } from '../../src/reference/reference.js';
import { Random } from '../../src/tensor/random.js';
import { judgeDecode } from '../../src/verify/precision.js';
import { generateProblem, type ProblemConfig } from '../../src/verify/problems.js';
import { decodeOnGpu, referenceOnGpu, uploadProblem } from './support.js';

const backend = CudaBackend.open(0);
const random = new Random(Number(process.env.FLASHMLA_TEST_SEED ?? 1));
const configs: ProblemConfig[] = [
  { batch: 1, seqlenQ: 1, numHeadsQ: 1, numHeadsKv: 1, meanLength: 20 },
  {
    batch: 2,
    seqlenQ: 2,
    numHeadsQ: 16,
    numHeadsKv: 1,
    meanLength: 140,
    varlen: 'normal',
    causal: true,
  },
  {
    batch: 2,
    seqlenQ: 4,
    numHeadsQ: 9,
    numHeadsKv: 3,
    meanLength: 65,
    causal: true,
    dtype: 'fp16',
    paddedStrides: true,
  },
  { batch: 1, seqlenQ: 2, numHeadsQ: 64, numHeadsKv: 1, meanLength: 300 }, // 128 rows: two row tiles, split
  { batch: 3, seqlenQ: 1, numHeadsQ: 3, numHeadsKv: 1, meanLength: 0, lengths: [0, 70, 0] },
];
let failures = 0;
for (const config of configs) {
  const problem = generateProblem(config, random);
  const onGpu = uploadProblem(backend, problem);
  const reference = referenceDecode(problem, { errorScales: true });
  const decoded = decodeOnGpu(backend, onGpu, JSON.stringify(config));
  decoded.metadata.dispose();
  const oracle = referenceOnGpu(backend, onGpu);
  for (const [what, result] of [
    ['decode', decoded],
    ['oracle', oracle],
  ] as const) {
    const verdict = judgeDecode(result, problem, reference);
    if (!verdict.ok) {
      failures++;
      console.error(
        `${what} mismatch for ${JSON.stringify(config)} (seed ${random.seed}):\n${verdict.report.failures.join('\n')}`,
      );
    }
  }
  onGpu.dispose();
}
backend.synchronize();
console.log(`sanitize workload: ${configs.length} problems, ${failures} mismatches`);
process.exitCode = failures === 0 ? 0 : 1;
