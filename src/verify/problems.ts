/**
 * Random decode problems on the host, drawn from a seeded PRNG the way the test plan asks (docs/testing.md): random
 * block placement, padding entries in the block table, NaN in every cache row no query attends,
 * optional padded strides (padding filled with NaN), and data of every kind that can show a bug.
 */
import { HEAD_DIM_K, PAGE_BLOCK_SIZE } from '../config.js';
import type { HostDecodeInputs } from '../reference/problem.js';
import { float32ToBf16Bits, float32ToFp16Bits } from '../tensor/half.js';
import { HostTensor } from '../tensor/host-tensor.js';
import type { Random } from '../tensor/random.js';

export type Varlen = 'off' | 'normal' | 'half-empty';
export type DataKind = 'gentle' | 'steep' | 'q10' | 'q100';
export type PaddingEntry = 'huge' | 'negative' | 'zero';

/** N(0,1)·scale, clamped to ±clamp where clamp > 0 (what the GPU fill kernel draws, too). */
export interface Distribution {
  scale: number;
  clamp: number;
}

/**
 * The data kinds: gentle is FlashMLA's own test data (scores near 0, a flat softmax that hides
 * most bugs); steep has N(0,1) scores of spread sqrt(576)·scale, a softmax dominated by a few keys
 * (with scale 192^-0.5 or 0.5 as well as the default); large multiplies q by 10 or 100, a
 * softmax of one key and lse far from 0.
 */
export const DATA_KINDS: Readonly<Record<DataKind, { q: Distribution; cache: Distribution }>> = {
  gentle: { q: { scale: 0.1, clamp: 1 }, cache: { scale: 0.1, clamp: 1 } },
  steep: { q: { scale: 1, clamp: 0 }, cache: { scale: 1, clamp: 0 } },
  q10: { q: { scale: 10, clamp: 0 }, cache: { scale: 1, clamp: 0 } },
  q100: { q: { scale: 100, clamp: 0 }, cache: { scale: 1, clamp: 0 } },
};

/** Every data kind's name, in DATA_KINDS' order. */
export const DATA_KIND_NAMES = Object.keys(DATA_KINDS) as readonly DataKind[];

/** A value drawn from `distribution`. */
export function drawValue(random: Random, distribution: Distribution): number {
  const value = random.normal() * distribution.scale;
  return distribution.clamp > 0
    ? Math.min(Math.max(value, -distribution.clamp), distribution.clamp)
    : value;
}

export interface ProblemConfig {
  batch: number;
  seqlenQ: number;
  numHeadsQ: number;
  numHeadsKv: number;
  /** Mean cache length (the length itself when varlen is 'off'). */
  meanLength: number;
  varlen?: Varlen;
  /** Explicit lengths; override meanLength/varlen. */
  lengths?: readonly number[];
  causal?: boolean;
  dtype?: 'bf16' | 'fp16';
  softmaxScale?: number;
  data?: DataKind;
  /** Pad the outer strides of q, kCache and blockTable (padding holds NaN / junk). */
  paddedStrides?: boolean;
  /** What the block table holds past each sequence's end. */
  paddingEntry?: PaddingEntry;
  /** Spare blocks in the pool that no sequence uses (filled with NaN). */
  spareBlocks?: number;
}

export interface Problem extends HostDecodeInputs {
  config: Required<Omit<ProblemConfig, 'lengths' | 'softmaxScale'>> & {
    softmaxScale: number | undefined;
  };
  lengths: Int32Array;
}

const PADDING_VALUES: Record<PaddingEntry, number> = { huge: 2147480000, negative: -1, zero: 0 };

/** Sequence lengths: fixed, Normal(mean, mean/2) clamped to >= s_q, or about half of them 0. */
export function drawLengths(
  random: Random,
  batch: number,
  mean: number,
  varlen: Varlen,
  seqlenQ: number,
): Int32Array {
  const lengths = new Int32Array(batch);
  for (let i = 0; i < batch; i++) {
    if (varlen === 'off') lengths[i] = mean;
    else {
      const drawn = Math.max(Math.round(random.normal(mean, mean / 2)), seqlenQ);
      lengths[i] = varlen === 'half-empty' && random.uniform() < 0.5 ? 0 : drawn;
    }
  }
  return lengths;
}

export function generateProblem(config: ProblemConfig, random: Random): Problem {
  const full = {
    varlen: 'off' as Varlen,
    causal: false,
    dtype: 'bf16' as const,
    data: 'gentle' as DataKind,
    paddedStrides: false,
    paddingEntry: 'huge' as PaddingEntry,
    spareBlocks: 2,
    ...config,
    softmaxScale: config.softmaxScale,
  };
  const { batch, seqlenQ, numHeadsQ, numHeadsKv, dtype } = full;
  const lengths = config.lengths
    ? Int32Array.from(config.lengths)
    : drawLengths(random, batch, full.meanLength, full.varlen, seqlenQ);

  // Blocks: each sequence gets ceil(len/64) of them, placed at random in the pool.
  const blocksPerSeq = Array.from(lengths, (length) => Math.ceil(length / PAGE_BLOCK_SIZE));
  const usedBlocks = blocksPerSeq.reduce((sum, n) => sum + n, 0);
  const numBlocks = usedBlocks + full.spareBlocks;
  const maxBlocksPerSeq = Math.max(1, ...blocksPerSeq);
  const placement = random.permutation(numBlocks);

  const pad = full.paddedStrides;
  const encode = dtype === 'bf16' ? float32ToBf16Bits : float32ToFp16Bits;
  const nanBits = encode(Number.NaN);

  const blockTable = pad
    ? HostTensor.padded('int32', [batch, maxBlocksPerSeq], [batch, maxBlocksPerSeq + 3], -7)
    : HostTensor.zeros('int32', [batch, maxBlocksPerSeq]);
  let next = 0;
  const ownerOfBlock = new Int32Array(numBlocks).fill(-1);
  const firstTokenOfBlock = new Int32Array(numBlocks);
  for (let i = 0; i < batch; i++) {
    for (let j = 0; j < maxBlocksPerSeq; j++) {
      if (j < blocksPerSeq[i]) {
        const blockId = placement[next++];
        blockTable.set(blockId, i, j);
        ownerOfBlock[blockId] = i;
        firstTokenOfBlock[blockId] = j * PAGE_BLOCK_SIZE;
      } else {
        blockTable.set(PADDING_VALUES[full.paddingEntry], i, j);
      }
    }
  }

  const kShape = [numBlocks, PAGE_BLOCK_SIZE, numHeadsKv, HEAD_DIM_K];
  const kCache = pad
    ? HostTensor.padded(dtype, kShape, [numBlocks, PAGE_BLOCK_SIZE + 1, numHeadsKv, HEAD_DIM_K + 8])
    : HostTensor.zeros(dtype, kShape);
  const qShape = [batch, seqlenQ, numHeadsQ, HEAD_DIM_K];
  const q = pad
    ? HostTensor.padded(dtype, qShape, [batch, seqlenQ, numHeadsQ + 1, HEAD_DIM_K + 16])
    : HostTensor.zeros(dtype, qShape);

  const cacheValue = () => drawValue(random, DATA_KINDS[full.data].cache);
  const qValue = () => drawValue(random, DATA_KINDS[full.data].q);

  // Cache rows: random where attended, NaN/Inf poison elsewhere (tails, spare blocks).
  for (let block = 0; block < numBlocks; block++) {
    const owner = ownerOfBlock[block];
    for (let t = 0; t < PAGE_BLOCK_SIZE; t++) {
      const attended = owner >= 0 && firstTokenOfBlock[block] + t < lengths[owner];
      for (let h = 0; h < numHeadsKv; h++) {
        const base = kCache.elementOffset([block, t, h, 0]);
        for (let c = 0; c < HEAD_DIM_K; c++) {
          kCache.data[base + c] = attended
            ? encode(cacheValue())
            : c % 2 === 0
              ? nanBits
              : encode(Number.POSITIVE_INFINITY);
        }
      }
    }
  }
  for (let i = 0; i < batch; i++) {
    for (let s = 0; s < seqlenQ; s++) {
      for (let h = 0; h < numHeadsQ; h++) {
        const base = q.elementOffset([i, s, h, 0]);
        for (let c = 0; c < HEAD_DIM_K; c++) q.data[base + c] = encode(qValue());
      }
    }
  }

  const cacheSeqlens = new HostTensor('int32', lengths.slice(), [batch]);
  return {
    q,
    kCache,
    blockTable,
    cacheSeqlens,
    softmaxScale: full.softmaxScale ?? 1 / Math.sqrt(HEAD_DIM_K),
    causal: full.causal,
    config: full,
    lengths,
  };
}
