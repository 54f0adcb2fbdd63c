/**
 * The benchmark's correctness check of a row, run once before it is timed: a fast kernel that
 * computes the wrong thing must not show good numbers. Two parts, both cheap next to the timing:
 * every output must be finite where some key is attended (the cache rows past each length are
 * NaN, so a kernel that reads them shows here; out and lse were NaN-filled before the call, so
 * an element it never writes shows too), and one sampled sequence, the longest, must match the
 * float64 reference for two query heads under the precision rule (docs/precision.md).
 */
import { HEAD_DIM_K, PAGE_BLOCK_SIZE } from '../../config.js';
import { DeviceTensor } from '../../cuda/device-tensor.js';
import { copyDeviceToHostSync, subspan } from '../../cuda/memory.js';
import { StrideError } from '../../errors.js';
import { attendedKeyCount } from '../../reference/problem.js';
import { allocateHostArray, bytesPerElement } from '../../tensor/dtype.js';
import { HostTensor } from '../../tensor/host-tensor.js';
import type { Tensor } from '../../tensor/tensor.js';
import { judgeDecode } from '../../verify/precision.js';

/** The inputs of one timed decode call, wherever they live. */
export interface RowInputs {
  q: Tensor;
  kCache: Tensor;
  blockTable: Tensor;
  lengths: Int32Array;
  softmaxScale: number;
  causal: boolean;
}

export interface RowCheck {
  ok: boolean;
  /** One line: what was checked and what was found. */
  detail: string;
}

export function checkRow(inputs: RowInputs, out: HostTensor, lse: HostTensor): RowCheck {
  const misplaced = nonFiniteMisplaced(inputs, out, lse);
  if (misplaced !== null) return { ok: false, detail: misplaced };
  const sample = sampleLongestSequence(inputs, out, lse);
  const verdict = judgeDecode(sample.actual, sample.inputs);
  const what = `sequence ${sample.sequence} (length ${sample.length}), heads ${sample.heads.join(' and ')} against the float64 reference`;
  return verdict.ok
    ? { ok: true, detail: `outputs finite; ${what}: ${verdict.summary}` }
    : {
        ok: false,
        detail: `${what}: ${verdict.summary}; ${verdict.report.failures.slice(0, 3).join('; ')}`,
      };
}

/**
 * Rows with attended keys must have finite out and lse; rows with none (causal, s_q > length)
 * must have out 0 and lse +inf. Returns the first violation, or null.
 */
function nonFiniteMisplaced(inputs: RowInputs, out: HostTensor, lse: HostTensor): string | null {
  const [batch, seqlenQ, numHeadsQ, headDimV] = out.shape;
  const exponentMask = out.dtype === 'fp16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < batch; i++) {
    const length = inputs.lengths[i];
    for (let s = 0; s < seqlenQ; s++) {
      const attended = attendedKeyCount(length, seqlenQ, s, inputs.causal);
      for (let h = 0; h < numHeadsQ; h++) {
        const rowLse = lse.get(i, h, s);
        const base = out.elementOffset([i, s, h, 0]);
        if (attended === 0) {
          if (rowLse !== Number.POSITIVE_INFINITY)
            return `lse[${i}, ${h}, ${s}] = ${rowLse} where nothing is attended (want +inf)`;
          for (let c = 0; c < headDimV; c++) {
            if ((out.data[base + c] & 0x7fff) !== 0)
              return `out[${i}, ${s}, ${h}, ${c}] = ${out.get(i, s, h, c)} where nothing is attended (want 0)`;
          }
          continue;
        }
        if (!Number.isFinite(rowLse)) return `lse[${i}, ${h}, ${s}] = ${rowLse}, not finite`;
        for (let c = 0; c < headDimV; c++) {
          if ((out.data[base + c] & exponentMask) === exponentMask)
            return `out[${i}, ${s}, ${h}, ${c}] = ${out.get(i, s, h, c)}, not finite`;
        }
      }
    }
  }
  return null;
}

/**
 * A one-sequence problem on the host holding the longest sequence of the batch and two query
 * heads of KV head 0's group (the first and last: an indexing error across heads shows), with
 * the outputs the backend gave for them. Only that sequence's cache blocks leave the GPU.
 */
function sampleLongestSequence(inputs: RowInputs, out: HostTensor, lse: HostTensor) {
  const { lengths } = inputs;
  let sequence = 0;
  for (let i = 1; i < lengths.length; i++) if (lengths[i] > lengths[sequence]) sequence = i;
  const length = lengths[sequence];
  const [, seqlenQ, numHeadsQ] = out.shape;
  const numHeadsKv = inputs.kCache.shape[2];
  const lastHead = numHeadsQ / numHeadsKv - 1;
  const heads = lastHead === 0 ? [0] : [0, lastHead];
  // Two heads as one view: the second sits `lastHead` head strides after the first.
  const pickHeads = (tensor: HostTensor, headDim: number) =>
    tensor
      .view(
        [1, tensor.shape[1], heads.length, tensor.shape[3]],
        [
          tensor.strides[0],
          tensor.strides[1],
          Math.max(lastHead, 1) * tensor.strides[headDim],
          tensor.strides[3],
        ],
        tensor.elementOffset([sequence, 0, 0, 0]),
      )
      .contiguous();
  const q = pickHeads(inputs.q.toHostSync(), 2);
  const sampledOut = pickHeads(out, 2);
  const sampledLse = lse
    .view(
      [1, heads.length, seqlenQ],
      [lse.strides[0], Math.max(lastHead, 1) * lse.strides[1], lse.strides[2]],
      lse.elementOffset([sequence, 0, 0]),
    )
    .contiguous();

  const numBlocks = Math.ceil(length / PAGE_BLOCK_SIZE);
  const table = inputs.blockTable.toHostSync();
  const kCache = HostTensor.zeros(inputs.kCache.dtype, [numBlocks, PAGE_BLOCK_SIZE, 1, HEAD_DIM_K]);
  for (let j = 0; j < numBlocks; j++) {
    const block = readBlock(inputs.kCache, table.get(sequence, j));
    const kvHead0 = block
      .view([PAGE_BLOCK_SIZE, 1, HEAD_DIM_K], [block.strides[0], 0, 1], 0)
      .contiguous();
    kCache.data.set(kvHead0.data, j * PAGE_BLOCK_SIZE * HEAD_DIM_K);
  }
  return {
    sequence,
    length,
    heads: heads.map(String),
    actual: { out: sampledOut, lse: sampledLse },
    inputs: {
      q,
      kCache,
      blockTable: HostTensor.fromValues(
        'int32',
        [1, Math.max(numBlocks, 1)],
        Array.from({ length: Math.max(numBlocks, 1) }, (_, j) => j),
      ),
      cacheSeqlens: HostTensor.fromValues('int32', [1], [length]),
      softmaxScale: inputs.softmaxScale,
      causal: inputs.causal,
    },
  };
}

/** One cache block, [64, h_kv, 576], copied to the host (only its bytes cross from a GPU). */
function readBlock(kCache: Tensor, block: number): HostTensor {
  const [, tokens, numHeadsKv, headDim] = kCache.shape;
  const shape = [tokens, numHeadsKv, headDim];
  if (kCache instanceof HostTensor)
    return kCache
      .view(shape, kCache.strides.slice(1), kCache.elementOffset([block, 0, 0, 0]))
      .contiguous();
  if (!(kCache instanceof DeviceTensor) || !kCache.isContiguous())
    throw new StrideError('kCache', 'a host tensor or a contiguous device tensor', String(kCache));
  const elements = tokens * numHeadsKv * headDim;
  const data = allocateHostArray(kCache.dtype, elements);
  const bytes = elements * bytesPerElement(kCache.dtype);
  copyDeviceToHostSync(data, subspan(kCache.storage(), block * bytes, bytes));
  return new HostTensor(kCache.dtype, data, shape);
}
