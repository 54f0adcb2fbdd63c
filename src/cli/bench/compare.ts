/**
 * Each row of a run against FlashMLA's figure for the same row on the same card: the ratio
 * FlashMLA µs / our µs (> 1: we are faster), and the geomean of the ratios. Only a row whose
 * configuration, card and lengths are exactly those FlashMLA was measured on gets a ratio; where
 * none can, the comparison says why instead of showing a column of dashes.
 */
import type { BackendKind } from '../../backend/backend.js';
import { type ReferenceFigure, type ReferenceTable, referenceTable } from './flashmla-reference.js';
import type { BenchRowConfig, BenchSuite } from './matrix.js';

/** A ratio below this is a row the target counts as slower than FlashMLA (the project's target: 0.97×). */
export const SLOW_RATIO = 0.97;

export interface RowComparison {
  flashmlaUs: number;
  /** FlashMLA µs / ours: > 1, we are faster. */
  ratio: number;
}

export interface ComparisonSummary {
  /** Rows in the summary: those with a ratio whose correctness check passed. */
  compared: number;
  /** Rows with a ratio left out because their check failed (a wrong result's speed is no score). */
  failedLeftOut: number;
  /** Geometric mean of the compared rows' ratios; null when none is compared. */
  geomean: number | null;
  min: number | null;
  max: number | null;
  /** Compared rows with a ratio below SLOW_RATIO, and below 1. */
  belowSlowRatio: number;
  belowOne: number;
}

export type FlashMlaComparison =
  | {
      available: true;
      /** Whose figures: the card measured, and the kernel, date and method. */
      reference: { card: string; kernel: string; date: string; method: string };
      /** One entry per row of the run, in its order; null where FlashMLA has no figure. */
      rows: (RowComparison | null)[];
      summary: ComparisonSummary;
    }
  | { available: false; reason: string };

/** The parts of a run the comparison needs. */
export interface ComparedRun {
  suite: BenchSuite;
  backendKind: BackendKind;
  card: string;
  seed: number;
  rows: readonly { config: BenchRowConfig; medianUs: number; ok: boolean }[];
}

function sameConfig(a: BenchRowConfig, b: BenchRowConfig): boolean {
  return (
    a.batch === b.batch &&
    a.meanLength === b.meanLength &&
    a.numHeadsQ === b.numHeadsQ &&
    a.numHeadsKv === b.numHeadsKv &&
    a.seqlenQ === b.seqlenQ &&
    a.varlen === b.varlen &&
    a.causal === b.causal &&
    a.dtype === b.dtype
  );
}

/**
 * FlashMLA's figure for this row on this card, or null. Fixed lengths do not depend on the seed;
 * variable lengths compare only when drawn with the seed FlashMLA's lengths were.
 */
export function findReference(
  table: ReferenceTable,
  card: string,
  config: BenchRowConfig,
  seed: number,
): ReferenceFigure | null {
  if (config.varlen && seed !== table.seed) return null;
  const row = table.rows.find((r) => sameConfig(r.config, config));
  return row?.figures[card] ?? null;
}

export function geomean(values: readonly number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

function listCards(cards: readonly string[]): string {
  return cards.length === 1 ? cards[0] : `${cards.slice(0, -1).join(', ')} and ${cards.at(-1)}`;
}

export function compareWithFlashMla(run: ComparedRun): FlashMlaComparison {
  const table = referenceTable(run.suite);
  const what = run.suite === 'small' ? "FlashMLA's small-batch figures" : "FlashMLA's figures";
  if (run.backendKind === 'cpu')
    return {
      available: false,
      reason: `the CPU backend runs here, and ${what} are GPU times (${listCards(table.cards)})`,
    };
  if (!table.cards.includes(run.card))
    return {
      available: false,
      reason: `${what} were measured on ${listCards(table.cards)}, not on ${run.card}`,
    };
  const rows = run.rows.map((row): RowComparison | null => {
    const figure = findReference(table, run.card, row.config, run.seed);
    return figure === null ? null : { flashmlaUs: figure.us, ratio: figure.us / row.medianUs };
  });
  if (rows.every((row) => row === null)) {
    const shape =
      run.suite === 'small'
        ? 'b 1, 4, 16; mean length 1024, 8192; h_q 16, 128; s_q 1'
        : 'b 128; mean length 4096, 8192, 16384; h_q 16 to 128; s_q 1, 2';
    return {
      available: false,
      reason: `no row of this run is one ${what} cover (${shape}; causal, bf16, h_kv 1; variable lengths with seed ${table.seed})`,
    };
  }
  const ratios = rows.flatMap((row, i) => (row !== null && run.rows[i].ok ? [row.ratio] : []));
  const failedLeftOut = rows.filter((row, i) => row !== null && !run.rows[i].ok).length;
  return {
    available: true,
    reference: { card: run.card, kernel: table.kernel, date: table.date, method: table.method },
    rows,
    summary: {
      compared: ratios.length,
      failedLeftOut,
      geomean: ratios.length > 0 ? geomean(ratios) : null,
      min: ratios.length > 0 ? Math.min(...ratios) : null,
      max: ratios.length > 0 ? Math.max(...ratios) : null,
      belowSlowRatio: ratios.filter((r) => r < SLOW_RATIO).length,
      belowOne: ratios.filter((r) => r < 1).length,
    },
  };
}
