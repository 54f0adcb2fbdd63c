import assert from 'node:assert/strict';
import { HEAD_DIM_V } from '../../src/config.js';
import { HostTensor } from '../../src/tensor/host-tensor.js';
import { judgeDecode } from '../../src/verify/precision.js';
import type { DataKind, Problem } from '../../src/verify/problems.js';
import { prepareDecode } from '../../src/verify/run.js';

/** Every data kind once, and steep data at all three softmax scales of the test matrix. */
export const DATA_KIND_CASES: readonly { data: DataKind; softmaxScale: number | undefined }[] = [
  { data: 'gentle', softmaxScale: undefined },
  { data: 'steep', softmaxScale: undefined },
  { data: 'steep', softmaxScale: 192 ** -0.5 },
  { data: 'steep', softmaxScale: 0.5 },
  { data: 'q10', softmaxScale: undefined },
  { data: 'q100', softmaxScale: undefined },
];

/** Runs a host problem through the public API (CPU backend), outputs NaN-prefilled. */
export function decodeOnHost(problem: Problem) {
  const [batch, seqlenQ, numHeadsQ] = problem.q.shape;
  const out = HostTensor.full(problem.q.dtype, [batch, seqlenQ, numHeadsQ, HEAD_DIM_V], Number.NaN);
  const lse = HostTensor.full('float32', [batch, numHeadsQ, seqlenQ], Number.NaN);
  const { metadata, decode } = prepareDecode(problem, { out, lse });
  decode();
  return { out, lse, metadata };
}

export function describeProblem(problem: Problem): string {
  const c = problem.config;
  return `b=${c.batch} s_q=${c.seqlenQ} h_q=${c.numHeadsQ} h_kv=${c.numHeadsKv} lengths=[${Array.from(problem.lengths).slice(0, 8).join(',')}${problem.lengths.length > 8 ? ',...' : ''}] causal=${c.causal} ${c.dtype} data=${c.data} padded=${c.paddedStrides} scale=${problem.softmaxScale.toFixed(4)}`;
}

/** Asserts the precision rule for a result, naming the problem and every failed check. */
export function assertJudgedOk(
  actual: { out: HostTensor; lse: HostTensor },
  problem: Problem,
  label: string,
): void {
  const verdict = judgeDecode(actual, problem);
  assert.ok(
    verdict.ok,
    `${label} ${describeProblem(problem)}: ${verdict.summary}\n${verdict.report.failures.join('\n')}`,
  );
}

/** Decodes on the host and asserts the precision rule against the float64 reference. */
export function assertHostDecodeMatches(problem: Problem, label = ''): void {
  assertJudgedOk(decodeOnHost(problem), problem, label);
}
