/**
 * Decode problems generated on the GPU, for shapes too large to build on the host (the
 * benchmark, the GPU suite's grid): lengths and block placement drawn on the host from a seeded
 * PRNG, q and the cache filled by a counter-based RNG kernel with any of the data kinds, NaN in
 * every cache row no query attends.
 */
import { HEAD_DIM_K, PAGE_BLOCK_SIZE } from '../config.js';
import { DeviceTensor } from '../cuda/device-tensor.js';
import type { CudaBackend } from '../cuda-backend/backend.js';
import { launchFillNormal } from '../cuda-backend/launch.js';
import { bytesPerElement } from '../tensor/dtype.js';
import { HostTensor } from '../tensor/host-tensor.js';
import type { Random } from '../tensor/random.js';
import { DATA_KINDS, type DataKind, drawLengths, type Varlen } from './problems.js';

export interface DeviceProblem {
  q: DeviceTensor;
  kCache: DeviceTensor;
  blockTable: DeviceTensor;
  cacheSeqlens: DeviceTensor;
  softmaxScale: number;
  causal: boolean;
  lengths: Int32Array;
  dispose(): void;
}

export interface GpuProblemConfig {
  batch: number;
  seqlenQ: number;
  numHeadsQ: number;
  numHeadsKv: number;
  meanLength: number;
  varlen: Varlen;
  causal: boolean;
  dtype: 'bf16' | 'fp16';
  lengths?: Int32Array;
  /** Default 'gentle'. */
  data?: DataKind;
  /** Default 1/sqrt(576). */
  softmaxScale?: number;
}

/**
 * A problem generated on the GPU (for shapes too large to build on the host): random block
 * placement, NaN everywhere no query attends (the cache is NaN-filled, then each sequence's
 * attended token rows are filled from the data kind's cache distribution), q from its q
 * distribution.
 */
export function generateOnGpu(
  backend: CudaBackend,
  config: GpuProblemConfig,
  random: Random,
  extraBlocks = 2,
  /** Used blocks are drawn from [firstUsedBlock, numBlocks): far ids exercise 64-bit offsets. */
  firstUsedBlock = 0,
): DeviceProblem {
  const { batch, seqlenQ, numHeadsQ, numHeadsKv, dtype } = config;
  const lengths =
    config.lengths ?? drawLengths(random, batch, config.meanLength, config.varlen, seqlenQ);
  const blocksPerSeq = Array.from(lengths, (l) => Math.ceil(l / PAGE_BLOCK_SIZE));
  const numBlocks = blocksPerSeq.reduce((a, b) => a + b, 0) + extraBlocks;
  const maxBlocks = Math.max(1, ...blocksPerSeq);
  const placement = random.permutation(numBlocks - firstUsedBlock).map((k) => k + firstUsedBlock);
  const table = HostTensor.full('int32', [batch, maxBlocks], 2147480000);
  let next = 0;
  for (let i = 0; i < batch; i++)
    for (let j = 0; j < blocksPerSeq[i]; j++) table.set(placement[next++], i, j);

  const kCache = DeviceTensor.empty(backend.device, dtype, [
    numBlocks,
    PAGE_BLOCK_SIZE,
    numHeadsKv,
    HEAD_DIM_K,
  ]);
  const q = DeviceTensor.empty(backend.device, dtype, [batch, seqlenQ, numHeadsQ, HEAD_DIM_K]);
  const stream = backend.stream;
  kCache.fillNaN(stream);
  const rowElements = numHeadsKv * HEAD_DIM_K;
  const elementBytes = bytesPerElement(dtype);
  const seed = () => BigInt(random.nextUint32()) * 4294967296n + BigInt(random.nextUint32());
  const data = DATA_KINDS[config.data ?? 'gentle'];
  // Attended rows of one block are a contiguous run of whole token rows: one fill each.
  for (let i = 0; i < batch; i++) {
    for (let j = 0; j < blocksPerSeq[i]; j++) {
      const tokens = Math.min(PAGE_BLOCK_SIZE, lengths[i] - j * PAGE_BLOCK_SIZE);
      const block = table.get(i, j);
      launchFillNormal(backend.kernels, stream, {
        dst: kCache.ptr + BigInt(block * PAGE_BLOCK_SIZE * rowElements * elementBytes),
        count: tokens * rowElements,
        dtype,
        seed: seed(),
        ...data.cache,
      });
    }
  }
  launchFillNormal(backend.kernels, stream, {
    dst: q.ptr,
    count: q.shape.reduce((a, b) => a * b, 1),
    dtype,
    seed: seed(),
    ...data.q,
  });
  const blockTable = DeviceTensor.fromHost(backend.device, table, stream);
  const cacheSeqlens = DeviceTensor.fromHost(
    backend.device,
    new HostTensor('int32', lengths.slice(), [batch]),
    stream,
  );
  stream.synchronize();
  const tensors = [q, kCache, blockTable, cacheSeqlens];
  return {
    q,
    kCache,
    blockTable,
    cacheSeqlens,
    softmaxScale: config.softmaxScale ?? 1 / Math.sqrt(HEAD_DIM_K),
    causal: config.causal,
    lengths,
    dispose: () => {
      for (const t of tensors) t.dispose();
    },
  };
}
