/**
 * Host-side view of one decode call: dimensions, and fast decoded access to query rows and to
 * paged cache rows. Shared by the float64 reference and the CPU backend; assumes the inputs were
 * validated (src/api/validate.ts).
 */
import { HEAD_DIM_K, HEAD_DIM_V, PAGE_BLOCK_SIZE } from '../config.js';
import { halfDecodeTable } from '../tensor/half.js';
import { HostTensor } from '../tensor/host-tensor.js';

export interface HostDecodeInputs {
  q: HostTensor;
  kCache: HostTensor;
  blockTable: HostTensor;
  cacheSeqlens: HostTensor;
  softmaxScale: number;
  causal: boolean;
}

/**
 * How many keys (a prefix 0..n-1 of the sequence) query token `s` of `seqlenQ` attends in a
 * sequence of `length`: all of them, or with causal masking (bottom-right aligned) those up to
 * length - s_q + s.
 */
export function attendedKeyCount(
  length: number,
  seqlenQ: number,
  s: number,
  causal: boolean,
): number {
  if (!causal) return length;
  return Math.min(Math.max(length - seqlenQ + s + 1, 0), length);
}

export class HostProblem {
  readonly batch: number;
  readonly seqlenQ: number;
  readonly numHeadsQ: number;
  readonly numHeadsKv: number;
  readonly groupSize: number;
  /** s_q * groupSize: query rows that share one KV head. */
  readonly rowsPerKvHead: number;
  readonly softmaxScale: number;
  readonly causal: boolean;
  readonly lengths: Int32Array;
  private readonly inputs: HostDecodeInputs;
  private readonly table: Float32Array;

  constructor(inputs: HostDecodeInputs) {
    this.inputs = inputs;
    const [batch, seqlenQ, numHeadsQ] = inputs.q.shape;
    this.batch = batch;
    this.seqlenQ = seqlenQ;
    this.numHeadsQ = numHeadsQ;
    this.numHeadsKv = inputs.kCache.shape[2];
    this.groupSize = numHeadsQ / this.numHeadsKv;
    this.rowsPerKvHead = seqlenQ * this.groupSize;
    this.softmaxScale = inputs.softmaxScale;
    this.causal = inputs.causal;
    this.table = halfDecodeTable(inputs.q.dtype === 'fp16' ? 'fp16' : 'bf16');
    this.lengths = new Int32Array(batch);
    for (let i = 0; i < batch; i++) this.lengths[i] = inputs.cacheSeqlens.get(i);
  }

  /**
   * How many keys (a prefix 0..n-1 of the sequence) query token `s` of a sequence of `length`
   * attends: all of them, or with causal masking (bottom-right aligned) those up to
   * length - s_q + s.
   */
  attendedKeys(length: number, s: number): number {
    return attendedKeyCount(length, this.seqlenQ, s, this.causal);
  }

  /** Decodes q[batch, s, head, :] into `into` (576 values). */
  readQuery(batch: number, s: number, head: number, into: Float64Array): Float64Array {
    const q = this.inputs.q;
    const base = q.offset + batch * q.strides[0] + s * q.strides[1] + head * q.strides[2];
    const stride = q.strides[3];
    const data = q.data;
    for (let c = 0; c < HEAD_DIM_K; c++) into[c] = this.table[data[base + c * stride]];
    return into;
  }

  /** Decodes the cache rows of tokens [begin, end) of (batch, kvHead) into `into` ([end - begin][576]). */
  readKeys(
    batch: number,
    kvHead: number,
    begin: number,
    end: number,
    into: Float64Array,
  ): Float64Array {
    const k = this.inputs.kCache;
    const blockTable = this.inputs.blockTable;
    const data = k.data;
    const stride = k.strides[3];
    for (let t = begin; t < end; t++) {
      const blockId = blockTable.get(batch, Math.floor(t / PAGE_BLOCK_SIZE));
      const base =
        k.offset +
        blockId * k.strides[0] +
        (t % PAGE_BLOCK_SIZE) * k.strides[1] +
        kvHead * k.strides[2];
      const row = (t - begin) * HEAD_DIM_K;
      for (let c = 0; c < HEAD_DIM_K; c++) into[row + c] = this.table[data[base + c * stride]];
    }
    return into;
  }

  /** Output tensors: out [b, s_q, h_q, 512] in q's dtype and lse [b, h_q, s_q] float32. */
  allocateOutputs(): { out: HostTensor; lse: HostTensor } {
    return {
      out: HostTensor.zeros(this.inputs.q.dtype, [
        this.batch,
        this.seqlenQ,
        this.numHeadsQ,
        HEAD_DIM_V,
      ]),
      lse: HostTensor.zeros('float32', [this.batch, this.numHeadsQ, this.seqlenQ]),
    };
  }
}
