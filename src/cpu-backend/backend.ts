/** The CPU backend: the split-and-combine algorithm of the GPU, run on the host in float64. */

import { checkDecodeValues } from '../api/validate.js';
import type { Backend, DecodeCall, DecodeResult } from '../backend/backend.js';
import { MlaMetadata } from '../backend/metadata.js';
import { CPU_NOMINAL_SM_COUNT, HEAD_DIM_V, METADATA_INTS_PER_PART } from '../config.js';
import type { CudaStream } from '../cuda/stream.js';
import { OptionError } from '../errors.js';
import { computeTileSchedule, numSmPartsFor } from '../scheduler.js';
import type { DType } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';
import type { Tensor } from '../tensor/tensor.js';
import { cpuDecode } from './split-decode.js';

class CpuBackend implements Backend {
  readonly kind = 'cpu';
  readonly description = 'cpu (split-KV decode in float64 on the host)';

  numSmParts(numQRowsPerKvHead: number, numHeadsK: number): number {
    return numSmPartsFor(CPU_NOMINAL_SM_COUNT, numQRowsPerKvHead, numHeadsK);
  }

  getMlaMetadata(
    cacheSeqlens: Tensor,
    numQRowsPerKvHead: number,
    numHeadsK: number,
    _stream?: CudaStream,
    into?: MlaMetadata,
  ): MlaMetadata {
    const lengths = (cacheSeqlens as HostTensor).contiguous().data as Int32Array;
    const numSmParts = this.numSmParts(numQRowsPerKvHead, numHeadsK);
    const schedule = computeTileSchedule(lengths, numSmParts);
    if (into) {
      (into.tileSchedulerMetadata as HostTensor).data.set(schedule.tileSchedulerMetadata);
      (into.numSplits as HostTensor).data.set(schedule.numSplits);
      return into;
    }
    return new MlaMetadata({
      tileSchedulerMetadata: new HostTensor('int32', schedule.tileSchedulerMetadata, [
        numSmParts,
        METADATA_INTS_PER_PART,
      ]),
      numSplits: new HostTensor('int32', schedule.numSplits, [lengths.length + 1]),
      batch: lengths.length,
      numQRowsPerKvHead,
      numHeadsK,
      numSmParts,
      workspace: null,
    });
  }

  decode(call: DecodeCall): DecodeResult<HostTensor> {
    const host = (tensor: Tensor) => tensor as HostTensor;
    checkDecodeValues(host(call.blockTable), host(call.cacheSeqlens), call.shape);
    const { shape, metadata } = call;
    const out = call.out
      ? host(call.out)
      : HostTensor.zeros(shape.dtype, [shape.batch, shape.seqlenQ, shape.numHeadsQ, HEAD_DIM_V]);
    const lse = call.lse
      ? host(call.lse)
      : HostTensor.zeros('float32', [shape.batch, shape.numHeadsQ, shape.seqlenQ]);
    cpuDecode(
      {
        q: host(call.q),
        kCache: host(call.kCache),
        blockTable: host(call.blockTable),
        cacheSeqlens: host(call.cacheSeqlens),
        softmaxScale: shape.softmaxScale,
        causal: shape.causal,
      },
      {
        tileSchedulerMetadata: host(metadata.tileSchedulerMetadata).data as Int32Array,
        numSplits: host(metadata.numSplits).data as Int32Array,
        numSmParts: metadata.numSmParts,
      },
      { out, lse },
    );
    return { out, lse };
  }

  empty(dtype: DType, shape: readonly number[]): HostTensor {
    return HostTensor.zeros(dtype, shape);
  }

  upload(tensor: HostTensor): HostTensor {
    return tensor;
  }

  wrap(ptr: bigint): never {
    throw new OptionError(
      'ptr',
      'a backend with device memory (cuda) to wrap a device pointer',
      `0x${ptr.toString(16)} on the cpu backend`,
    );
  }

  synchronize(): void {}

  time(work: () => void, options: { warmup: number; repeats: number }): number[] {
    for (let i = 0; i < options.warmup; i++) work();
    const times: number[] = [];
    for (let i = 0; i < options.repeats; i++) {
      const start = performance.now();
      work();
      times.push(performance.now() - start);
    }
    return times;
  }
}

export const cpuBackend: Backend = new CpuBackend();
