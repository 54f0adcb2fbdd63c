/**
 * FlashMLA's own figures on our test cards: the bar every row of `flashmla bench` is compared
 * with (its "vs FlashMLA" column). FlashMLA's dense decode kernel for Hopper (the 2025-04
 * "seesaw" version, its last Hopper dense kernel), built for sm_90a with nvcc 13.0, was measured
 * on 2026-11-28 on the same cards, on exactly the lengths this bench draws (its generator, seed
 * 0) and timed exactly as this bench times each suite, so FlashMLA µs / our µs on a row is a
 * like-for-like score (> 1: we are faster). The tables are the project's benchmark brief's, row
 * for row; the tests pin their rows and check every TFLOPS and GB/s figure against its µs and
 * the seed-0 lengths. On these cards a row moves by a few percent from run to run: judge by
 * several rows and by repeat runs, not by one number.
 */
import type { BenchRowConfig, BenchSuite } from './matrix.js';

/** Device names as the CUDA driver reports them (`flashmla info`, the bench report's card). */
export const H100_CARD = 'NVIDIA H100 80GB HBM3';
export const H200_CARD = 'NVIDIA H200';

/** One FlashMLA figure: median µs per decode call, and TFLOPS and GB/s where recorded. */
export interface ReferenceFigure {
  us: number;
  tflops?: number;
  gbps?: number;
}

export interface ReferenceRow {
  /** The row as our bench configures it: a run's row compares with it if every field is equal. */
  config: BenchRowConfig;
  /** By card (device name). */
  figures: Readonly<Record<string, ReferenceFigure>>;
}

export interface ReferenceTable {
  /** The bench suite whose rows and timing it matches. */
  suite: BenchSuite;
  /** What was measured. */
  kernel: string;
  /** UTC day of the measurement. */
  date: string;
  /** How it was timed: the same procedure as the suite's. */
  method: string;
  /** The cards measured, by device name. */
  cards: readonly string[];
  /** The seed the lengths were drawn with: variable-length rows compare only at this seed. */
  seed: number;
  rows: readonly ReferenceRow[];
}

const KERNEL =
  'FlashMLA 2025-04, its dense decode kernel for Hopper ("seesaw"), built for sm_90a with nvcc 13.0';

/** b = 128, causal, bf16, h_kv = 1, as the standard matrix. */
const STANDARD_SHAPE = { batch: 128, numHeadsKv: 1, causal: true, dtype: 'bf16' } as const;
/** s_q = 1, causal, bf16, h_kv = 1, as the small-batch matrix. */
const SMALL_SHAPE = { seqlenQ: 1, numHeadsKv: 1, causal: true, dtype: 'bf16' } as const;

// mean len, h_q, s_q, varlen; then µs, TFLOPS, GB/s on the H100; then the same on the H200.
type StandardLine = readonly [number, number, number, boolean, ...number[]];
const STANDARD_LINES: readonly StandardLine[] = [
  [4096, 16, 1, false, 210, 87, 2900, 146, 125, 4173],
  [4096, 16, 1, true, 210, 83, 2778, 147, 119, 3976],
  [4096, 16, 2, false, 211, 173, 2904, 146, 250, 4192],
  [4096, 16, 2, true, 225, 156, 2615, 158, 222, 3735],
  [4096, 32, 1, false, 211, 173, 2902, 147, 249, 4173],
  [4096, 32, 1, true, 225, 156, 2617, 158, 222, 3724],
  [4096, 32, 2, false, 214, 341, 2905, 147, 497, 4233],
  [4096, 32, 2, true, 242, 290, 2471, 174, 404, 3442],
  [4096, 64, 1, false, 214, 341, 2902, 148, 493, 4196],
  [4096, 64, 1, true, 242, 289, 2466, 175, 400, 3411],
  [4096, 64, 2, false, 246, 593, 2597, 226, 647, 2834],
  [4096, 64, 2, true, 281, 498, 2187, 276, 508, 2229],
  [4096, 128, 1, false, 249, 587, 2571, 250, 583, 2555],
  [4096, 128, 1, true, 285, 492, 2160, 266, 526, 2311],
  [4096, 128, 2, false, 471, 620, 1434, 450, 649, 1501],
  [4096, 128, 2, true, 469, 597, 1386, 477, 587, 1364],
  [8192, 16, 1, false, 410, 89, 2957, 281, 130, 4321],
  [8192, 16, 1, true, 402, 87, 2894, 275, 128, 4235],
  [8192, 16, 2, false, 411, 178, 2962, 279, 262, 4366],
  [8192, 16, 2, true, 424, 165, 2755, 293, 239, 3986],
  [8192, 32, 1, false, 410, 178, 2966, 280, 260, 4340],
  [8192, 32, 1, true, 423, 165, 2758, 294, 238, 3975],
  [8192, 32, 2, false, 413, 353, 2965, 283, 517, 4339],
  [8192, 32, 2, true, 443, 316, 2656, 318, 441, 3702],
  [8192, 64, 1, false, 414, 352, 2959, 283, 517, 4337],
  [8192, 64, 1, true, 444, 315, 2649, 317, 441, 3708],
  [8192, 64, 2, false, 516, 566, 2408, 468, 625, 2660],
  [8192, 64, 2, true, 540, 519, 2214, 506, 554, 2360],
  [8192, 128, 1, false, 552, 529, 2252, 509, 573, 2441],
  [8192, 128, 1, true, 515, 544, 2318, 500, 561, 2390],
  [8192, 128, 2, false, 946, 617, 1352, 947, 617, 1351],
  [8192, 128, 2, true, 882, 635, 1394, 884, 634, 1392],
  [16384, 16, 1, false, 820, 89, 2953, 553, 132, 4374],
  [16384, 16, 1, true, 778, 90, 2983, 535, 131, 4342],
  [16384, 16, 2, false, 841, 174, 2883, 579, 252, 4187],
  [16384, 16, 2, true, 809, 173, 2876, 557, 252, 4179],
  [16384, 32, 1, false, 842, 173, 2879, 584, 250, 4155],
  [16384, 32, 1, true, 810, 173, 2874, 556, 252, 4187],
  [16384, 32, 2, false, 869, 336, 2800, 607, 481, 4007],
  [16384, 32, 2, true, 838, 334, 2788, 590, 475, 3956],
  [16384, 64, 1, false, 870, 336, 2797, 619, 472, 3930],
  [16384, 64, 1, true, 834, 336, 2799, 591, 474, 3953],
  [16384, 64, 2, false, 991, 589, 2473, 978, 597, 2506],
  [16384, 64, 2, true, 998, 561, 2358, 889, 630, 2648],
  [16384, 128, 1, false, 1018, 574, 2409, 935, 625, 2622],
  [16384, 128, 1, true, 989, 567, 2380, 887, 632, 2653],
  [16384, 128, 2, false, 1932, 605, 1288, 1822, 641, 1365],
  [16384, 128, 2, true, 1840, 609, 1299, 1764, 635, 1354],
];

// b, mean len, h_q, varlen; µs per call on the H100.
type SmallLine = readonly [number, number, number, boolean, number];
const SMALL_LINES: readonly SmallLine[] = [
  [1, 1024, 16, false, 15.1],
  [1, 1024, 128, false, 17.5],
  [1, 8192, 16, false, 28.3],
  [1, 8192, 128, false, 33.4],
  [4, 1024, 16, false, 16.1],
  [4, 1024, 16, true, 15.9],
  [4, 1024, 128, false, 18.2],
  [4, 1024, 128, true, 18.1],
  [4, 8192, 16, false, 34.4],
  [4, 8192, 16, true, 32.7],
  [4, 8192, 128, false, 38.9],
  [4, 8192, 128, true, 39.0],
  [16, 1024, 16, false, 18.8],
  [16, 1024, 16, true, 20.1],
  [16, 1024, 128, false, 24.4],
  [16, 1024, 128, true, 25.9],
  [16, 8192, 16, false, 63.5],
  [16, 8192, 16, true, 62.8],
  [16, 8192, 128, false, 74.5],
  [16, 8192, 128, true, 76.8],
];

/** FlashMLA's 48-row benchmark matrix on the H100 and the H200. */
export const FLASHMLA_STANDARD: ReferenceTable = {
  suite: 'standard',
  kernel: KERNEL,
  date: '2026-11-28',
  method:
    'the lengths of flashmla bench (seed 0); metadata computed outside the time; 5 warm-up ' +
    'calls, then CUDA events between 30 back-to-back decode calls; the median',
  cards: [H100_CARD, H200_CARD],
  seed: 0,
  rows: STANDARD_LINES.map(([meanLength, numHeadsQ, seqlenQ, varlen, ...f]) => ({
    config: { ...STANDARD_SHAPE, meanLength, numHeadsQ, seqlenQ, varlen },
    figures: {
      [H100_CARD]: { us: f[0], tflops: f[1], gbps: f[2] },
      [H200_CARD]: { us: f[3], tflops: f[4], gbps: f[5] },
    },
  })),
};

/** The 20-row small-batch matrix, on the H100 only. */
export const FLASHMLA_SMALL: ReferenceTable = {
  suite: 'small',
  kernel: KERNEL,
  date: '2026-11-28',
  method:
    'the lengths of flashmla bench --small (seed 0); metadata computed outside the graph; 20 ' +
    'back-to-back decode calls captured in one CUDA graph, replayed with CUDA events between ' +
    'replays (5 warm-up, 50 timed); the median divided by 20',
  cards: [H100_CARD],
  seed: 0,
  rows: SMALL_LINES.map(([batch, meanLength, numHeadsQ, varlen, us]) => ({
    config: { ...SMALL_SHAPE, batch, meanLength, numHeadsQ, varlen },
    figures: { [H100_CARD]: { us } },
  })),
};

export function referenceTable(suite: BenchSuite): ReferenceTable {
  return suite === 'small' ? FLASHMLA_SMALL : FLASHMLA_STANDARD;
}
