/**
 * `flashmla check`: random configurations drawn from the test matrix, each run on the chosen
 * backend and judged against the float64 reference. A fresh seed each run (printed), so repeated
 * runs keep finding new corners; the seed and the configuration reproduce any mismatch.
 */

import { openBackend } from '../api/open-backend.js';
import type { Backend } from '../backend/backend.js';
import { FlashMlaError } from '../errors.js';
import { Random } from '../tensor/random.js';
import { formatRatio } from '../verify/precision.js';
import {
  DATA_KIND_NAMES,
  generateProblem,
  type PaddingEntry,
  type ProblemConfig,
  type Varlen,
} from '../verify/problems.js';
import { runAndCheck } from '../verify/run.js';
import { backendFlag, type Command, intFlag, ProgressBar } from './command.js';

/** The test matrix's dimensions (docs/testing.md). */
const BATCHES = [1, 2, 6, 64] as const;
const SEQLENS_Q = [1, 2, 3, 4] as const;
const LENGTHS = [0, 1, 20, 63, 64, 65, 127, 128, 140, 4096] as const;
const HEADS_Q = [1, 3, 9, 16, 32, 63, 64, 126, 128] as const;
const HEADS_KV = [1, 2, 3, 8] as const;
const VARLENS: readonly Varlen[] = ['off', 'normal', 'half-empty'];
const DTYPES = ['bf16', 'fp16'] as const;
const SCALES = [undefined, 0.5, 192 ** -0.5] as const;
const PADDING: readonly PaddingEntry[] = ['huge', 'negative', 'zero'];

export const DEFAULT_MAX_COST = 1_000_000;

/** A drawn configuration: every choice explicit, so it prints and reproduces. */
export type CheckConfig = Required<Omit<ProblemConfig, 'lengths' | 'softmaxScale'>> & {
  softmaxScale: number | undefined;
};

/**
 * Rough work of checking one configuration, in units of one query-key pair of the float64
 * reference (about 1 µs on the host): the reference (and the CPU backend) visit s_q·h_q pairs
 * per cached token, and generating the inputs costs about a pair per 60 elements drawn.
 */
export function estimateCost(config: CheckConfig): number {
  const expectedTokens =
    config.batch * config.meanLength * (config.varlen === 'half-empty' ? 0.5 : 1);
  const queryRows = config.batch * config.seqlenQ * config.numHeadsQ;
  return (
    expectedTokens * (config.seqlenQ * config.numHeadsQ + 10 * config.numHeadsKv) + 10 * queryRows
  );
}

/**
 * One configuration, uniformly over each dimension, redrawn until its cost fits `maxCost` (the
 * cheapest of 10,000 draws if none does): the CPU reference must stay fast.
 */
export function drawCheckConfig(random: Random, maxCost: number): CheckConfig {
  let cheapest: CheckConfig | null = null;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const numHeadsQ = random.pick(HEADS_Q);
    const config: CheckConfig = {
      batch: random.pick(BATCHES),
      seqlenQ: random.pick(SEQLENS_Q),
      meanLength: random.pick(LENGTHS),
      numHeadsQ,
      numHeadsKv: random.pick(HEADS_KV.filter((h) => numHeadsQ % h === 0)),
      varlen: random.pick(VARLENS),
      causal: random.uniform() < 0.5,
      dtype: random.pick(DTYPES),
      softmaxScale: random.pick(SCALES),
      data: random.pick(DATA_KIND_NAMES),
      paddedStrides: random.uniform() < 0.5,
      paddingEntry: random.pick(PADDING),
      spareBlocks: random.int(0, 3),
    };
    if (estimateCost(config) <= maxCost) return config;
    if (cheapest === null || estimateCost(config) < estimateCost(cheapest)) cheapest = config;
  }
  return cheapest as CheckConfig;
}

export function describeCheckConfig(config: CheckConfig): string {
  return [
    `b=${config.batch}`,
    `s_q=${config.seqlenQ}`,
    `len=${config.meanLength}`,
    `varlen=${config.varlen}`,
    `h_q=${config.numHeadsQ}`,
    `h_kv=${config.numHeadsKv}`,
    config.causal ? 'causal' : 'non-causal',
    config.dtype,
    `scale=${config.softmaxScale === undefined ? 'default' : Number(config.softmaxScale.toPrecision(6))}`,
    `data=${config.data}`,
    config.paddedStrides ? 'padded-strides' : 'contiguous',
    `table-padding=${config.paddingEntry}`,
    `spare-blocks=${config.spareBlocks}`,
  ].join(' ');
}

export interface CheckSettings {
  seed: number;
  count: number;
  maxCost: number;
  verbose: boolean;
  /** How to name the backend in the reproduce line (`--backend cpu`). */
  backendFlag: string;
}

export interface CheckOutput {
  log(line: string): void;
  error(line: string): void;
}

/**
 * Runs `settings.count` configurations and reports: exit code 0 when all match, 1 otherwise.
 * Configuration k draws from its own seed, itself the k-th draw of `settings.seed`: the first k
 * configurations of a seed are the same whatever the count, so a failure reproduces with
 * `--count k+1`. `runOne` is how each is run and judged (the tests pass a faulty one).
 */
export function runCheck(
  backend: Backend,
  settings: CheckSettings,
  output: CheckOutput,
  runOne: typeof runAndCheck = runAndCheck,
  progress: ProgressBar = new ProgressBar(settings.count, 'flashmla check'),
): number {
  const started = performance.now();
  const seeds = new Random(settings.seed);
  output.log(
    `flashmla check: ${settings.count} random configurations on ${backend.description} (seed ${settings.seed}, max cost ${settings.maxCost})`,
  );
  // The worst error/bound ratio of each check over the run: how close a passing run came.
  const worst = { element: 0, row: 0, tensor: 0, lse: 0 };
  let failed = 0;
  for (let index = 0; index < settings.count; index++) {
    const random = new Random(seeds.nextUint32());
    const config = drawCheckConfig(random, settings.maxCost);
    const description = describeCheckConfig(config);
    progress.update(index, description);
    let verdictLine: string;
    let ok: boolean;
    let failures: string[] = [];
    try {
      const problem = generateProblem(config, random);
      const { verdict } = runOne(backend, problem, { warmup: 0, repeats: 1 });
      ok = verdict.ok;
      verdictLine = verdict.summary;
      failures = verdict.report.failures;
      for (const check of ['element', 'row', 'tensor', 'lse'] as const)
        worst[check] = Math.max(worst[check], verdict.report[check].ratio);
    } catch (error) {
      // A typed library error on one configuration is a failure of that configuration.
      if (!(error instanceof FlashMlaError)) throw error;
      ok = false;
      verdictLine = `threw ${error.name}: ${error.message}`;
    }
    progress.clear();
    if (!ok) {
      failed++;
      output.error(`#${index} MISMATCH ${description}\n  ${verdictLine}`);
      for (const line of failures) output.error(`  ${line}`);
      output.error(
        `  reproduce: flashmla check ${settings.backendFlag} --seed ${settings.seed} --count ${index + 1} --max-cost ${settings.maxCost}`,
      );
    } else if (settings.verbose) {
      output.log(`#${index} ok ${description}\n  ${verdictLine}`);
    }
  }
  progress.update(settings.count);
  progress.clear();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const passed = settings.count - failed;
  const ratios = Object.entries(worst)
    .map(([check, ratio]) => `${check} ${formatRatio(ratio)}`)
    .join(', ');
  output.log(
    `${settings.count} configurations: ${passed} match, ${failed} mismatch (worst error/bound: ${ratios}); seed ${settings.seed}; ${seconds} s`,
  );
  return failed === 0 ? 0 : 1;
}

export const checkCommand: Command = {
  name: 'check',
  summary: 'run random configurations from the test matrix, checked against the reference',
  help: `Usage: flashmla check [--backend auto|cuda|cpu] [--device N] [--seed N] [--count N]
                      [--max-cost N] [--verbose]

Draws random configurations from the library's test matrix (batch, query tokens, cache length,
fixed or variable lengths, query and KV heads, causal, bf16/fp16, padded strides, block-table
padding, softmax scale, data kind: gentle N(0,1)/10, steep N(0,1), q x 10, q x 100; see the
package's docs/testing.md), runs each on the chosen backend and judges it against the float64 CPU
reference with the precision rule (per-element bounds scaled by what rounding P can do, row and
tensor cosines, lse, Inf/NaN placement; see the package's docs/precision.md). Prints the seed and
the worst error/bound ratio of each check; on a mismatch prints the configuration, the worst
element with its error and bound, and the command that reproduces it. Exit code 1 on any
mismatch.

  --backend   auto (the GPU if usable, else the CPU), cuda or cpu; default:
              $FLASHMLA_BACKEND if set, else auto
  --device    CUDA device ordinal (default 0)
  --seed      seed of the configurations and data (default: fresh, printed)
  --count     configurations to run (default 20)
  --max-cost  largest configuration, in query-key pairs of the reference (about 1 µs each on
              the host), counted as estimated tokens·(s_q·h_q + 10·h_kv) + 10·b·s_q·h_q
              (default ${DEFAULT_MAX_COST}: each configuration checks in a few seconds at most)
  --verbose   print every configuration, not only mismatches`,
  options: {
    backend: { type: 'string' },
    device: { type: 'string' },
    seed: { type: 'string' },
    count: { type: 'string' },
    'max-cost': { type: 'string' },
    verbose: { type: 'boolean' },
  },
  async run(values) {
    const choice = backendFlag(values.backend);
    const device = intFlag('device', values.device, 0);
    const settings = {
      seed: intFlag('seed', values.seed, Random.freshSeed()),
      count: intFlag('count', values.count, 20, 1),
      maxCost: intFlag('max-cost', values['max-cost'], DEFAULT_MAX_COST, 1000),
      verbose: values.verbose === true,
    };
    const backend = openBackend({ backend: choice, device });
    const reproduceBackend =
      backend.kind === 'cpu' ? '--backend cpu' : `--backend cuda --device ${device}`;
    return runCheck(
      backend,
      { ...settings, backendFlag: reproduceBackend },
      { log: (line) => console.log(line), error: (line) => console.error(line) },
    );
  },
};
