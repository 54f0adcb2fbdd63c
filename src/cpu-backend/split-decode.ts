/**
 * The CPU backend runs decode the way the GPU does: each part of the tile schedule computes its
 * pieces; a sequence finished in one piece gets its output directly, a sequence cut into several
 * splits gets float32 partial outputs and lses in a workspace, merged by the combine step. It is
 * slow but exercises the same split-and-combine arithmetic, and it is what runs where no GPU is.
 */
import { HEAD_DIM_K, HEAD_DIM_V } from '../config.js';
import { type HostDecodeInputs, HostProblem } from '../reference/problem.js';
import { attendRow } from '../reference/reference.js';
import { piecesOfPart } from '../scheduler.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import { encodeElement } from '../tensor/host-tensor.js';

export interface CpuSchedule {
  tileSchedulerMetadata: Int32Array;
  numSplits: Int32Array;
  numSmParts: number;
}

/** Partial results of the splits: o [splitRow][h_kv][rows][512] and lse [splitRow][h_kv][rows]. */
interface Workspace {
  oAccum: Float32Array;
  lseAccum: Float32Array;
}

export function cpuDecode(
  inputs: HostDecodeInputs,
  schedule: CpuSchedule,
  outputs: { out: HostTensor; lse: HostTensor },
): void {
  const problem = new HostProblem(inputs);
  const { numHeadsKv, rowsPerKvHead } = problem;
  const totalSplits = schedule.numSplits[problem.batch];
  const workspace: Workspace = {
    oAccum: new Float32Array(totalSplits * numHeadsKv * rowsPerKvHead * HEAD_DIM_V),
    lseAccum: new Float32Array(totalSplits * numHeadsKv * rowsPerKvHead),
  };
  for (let part = 0; part < schedule.numSmParts; part++) {
    for (const piece of piecesOfPart(schedule.tileSchedulerMetadata, part, problem.lengths)) {
      runPiece(
        problem,
        inputs,
        schedule.numSplits,
        piece.batch,
        piece.beginToken,
        piece.endToken,
        piece.split,
        workspace,
        outputs,
      );
    }
  }
  combine(problem, schedule.numSplits, workspace, outputs);
}

function runPiece(
  problem: HostProblem,
  inputs: HostDecodeInputs,
  numSplits: Int32Array,
  batch: number,
  beginToken: number,
  endToken: number,
  split: number,
  workspace: Workspace,
  outputs: { out: HostTensor; lse: HostTensor },
): void {
  const { numHeadsKv, groupSize, rowsPerKvHead } = problem;
  const splitCount = numSplits[batch + 1] - numSplits[batch];
  const splitRow = numSplits[batch] + split;
  const keys = new Float64Array((endToken - beginToken) * HEAD_DIM_K);
  const query = new Float64Array(HEAD_DIM_K);
  const acc = new Float64Array(HEAD_DIM_V);
  for (let kvHead = 0; kvHead < numHeadsKv; kvHead++) {
    problem.readKeys(batch, kvHead, beginToken, endToken, keys);
    for (let m = 0; m < rowsPerKvHead; m++) {
      const s = Math.floor(m / groupSize);
      const head = kvHead * groupSize + (m % groupSize);
      const last = Math.min(endToken, problem.attendedKeys(problem.lengths[batch], s));
      acc.fill(0);
      let lse = Number.NEGATIVE_INFINITY; // no attended key in this piece
      if (last > beginToken) {
        problem.readQuery(batch, s, head, query);
        lse = attendRow(query, keys, last - beginToken, problem.softmaxScale, acc);
      }
      if (splitCount === 1) {
        writeFinalRow(
          outputs,
          inputs.q.dtype,
          batch,
          s,
          head,
          acc,
          lse === Number.NEGATIVE_INFINITY ? Number.POSITIVE_INFINITY : lse,
        );
      } else {
        const row = (splitRow * numHeadsKv + kvHead) * rowsPerKvHead + m;
        workspace.lseAccum[row] = lse;
        workspace.oAccum.set(acc, row * HEAD_DIM_V);
      }
    }
  }
}

/** Merges the splits of every sequence that was cut into more than one. */
function combine(
  problem: HostProblem,
  numSplits: Int32Array,
  workspace: Workspace,
  outputs: { out: HostTensor; lse: HostTensor },
): void {
  const { batch, numHeadsKv, groupSize, rowsPerKvHead } = problem;
  const dtype = outputs.out.dtype;
  const acc = new Float64Array(HEAD_DIM_V);
  for (let i = 0; i < batch; i++) {
    const first = numSplits[i];
    const count = numSplits[i + 1] - first;
    if (count <= 1) continue;
    for (let kvHead = 0; kvHead < numHeadsKv; kvHead++) {
      for (let m = 0; m < rowsPerKvHead; m++) {
        const rowOf = (split: number) =>
          ((first + split) * numHeadsKv + kvHead) * rowsPerKvHead + m;
        let max = Number.NEGATIVE_INFINITY;
        for (let split = 0; split < count; split++)
          max = Math.max(max, workspace.lseAccum[rowOf(split)]);
        const s = Math.floor(m / groupSize);
        const head = kvHead * groupSize + (m % groupSize);
        acc.fill(0);
        if (max === Number.NEGATIVE_INFINITY) {
          writeFinalRow(outputs, dtype, i, s, head, acc, Number.POSITIVE_INFINITY);
          continue;
        }
        let sum = 0;
        for (let split = 0; split < count; split++)
          sum += Math.exp(workspace.lseAccum[rowOf(split)] - max);
        const lse = max + Math.log(sum);
        for (let split = 0; split < count; split++) {
          const row = rowOf(split);
          const weight = Math.exp(workspace.lseAccum[row] - lse);
          if (weight === 0) continue; // an empty split: its partial is 0 and must add nothing
          const base = row * HEAD_DIM_V;
          for (let c = 0; c < HEAD_DIM_V; c++) acc[c] += weight * workspace.oAccum[base + c];
        }
        writeFinalRow(outputs, dtype, i, s, head, acc, lse);
      }
    }
  }
}

function writeFinalRow(
  outputs: { out: HostTensor; lse: HostTensor },
  dtype: HostTensor['dtype'],
  batch: number,
  s: number,
  head: number,
  values: Float64Array,
  lse: number,
): void {
  const { out } = outputs;
  const base = out.elementOffset([batch, s, head, 0]);
  const stride = out.strides[3];
  for (let c = 0; c < HEAD_DIM_V; c++)
    out.data[base + c * stride] = encodeElement(dtype, values[c]);
  outputs.lse.set(lse, batch, head, s);
}
