/**
 * A pairwise (all-pairs) design: rows of factor values such that every pair of values of every
 * two factors appears in at least one row. Greedy construction with a seeded PRNG: each new row
 * is the best of several random candidates, completed value by value to cover the most
 * uncovered pairs. Pairs that no valid row can hold are dropped. Deterministic for a given seed.
 */
import type { Random } from '../../src/tensor/random.js';

export type Factors = Record<string, readonly unknown[]>;
export type Row<F extends Factors> = { [K in keyof F]: F[K][number] };

export function pairwiseDesign<F extends Factors>(
  factors: F,
  random: Random,
  isValid: (row: Row<F>) => boolean = () => true,
): Row<F>[] {
  const names = Object.keys(factors) as (keyof F & string)[];
  const uncovered = new Set<string>();
  const key = (a: string, i: number, b: string, j: number) => `${a}=${i}|${b}=${j}`;
  for (let x = 0; x < names.length; x++) {
    for (let y = x + 1; y < names.length; y++) {
      factors[names[x]].forEach((_, i) => {
        factors[names[y]].forEach((__, j) => {
          uncovered.add(key(names[x], i, names[y], j));
        });
      });
    }
  }
  const rows: Row<F>[] = [];
  const indexRow = (choice: Record<string, number>) =>
    Object.fromEntries(names.map((name) => [name, factors[name][choice[name]]])) as Row<F>;
  const gain = (choice: Record<string, number>) => {
    let count = 0;
    for (let x = 0; x < names.length; x++) {
      for (let y = x + 1; y < names.length; y++) {
        if (uncovered.has(key(names[x], choice[names[x]], names[y], choice[names[y]]))) count++;
      }
    }
    return count;
  };
  while (uncovered.size > 0) {
    let best: Record<string, number> | null = null;
    let bestGain = 0;
    for (let candidate = 0; candidate < 30; candidate++) {
      // Seed the row with one uncovered pair, fill the rest at random, then improve greedily.
      const choice: Record<string, number> = {};
      for (const name of names) choice[name] = random.int(0, factors[name].length - 1);
      const [first] = uncovered;
      const seeded = new Set<string>();
      for (const part of first.split('|')) {
        const [name, index] = part.split('=');
        choice[name] = Number(index);
        seeded.add(name);
      }
      for (const name of names) {
        if (seeded.has(name)) continue;
        let bestIndex = choice[name];
        let bestLocal = -1;
        for (let index = 0; index < factors[name].length; index++) {
          const trial = { ...choice, [name]: index };
          const g = isValid(indexRow(trial)) ? gain(trial) : -1;
          if (g > bestLocal) {
            bestLocal = g;
            bestIndex = index;
          }
        }
        choice[name] = bestIndex;
      }
      if (!isValid(indexRow(choice))) continue;
      const g = gain(choice);
      if (g > bestGain) {
        bestGain = g;
        best = choice;
      }
    }
    if (!best) {
      // The first uncovered pair cannot appear in any valid row we found: drop it.
      const [first] = uncovered;
      uncovered.delete(first);
      continue;
    }
    for (let x = 0; x < names.length; x++) {
      for (let y = x + 1; y < names.length; y++)
        uncovered.delete(key(names[x], best[names[x]], names[y], best[names[y]]));
    }
    rows.push(indexRow(best));
  }
  return rows;
}
