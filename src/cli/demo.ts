/** `flashmla demo` (what `npm start` runs): one realistic decode step, checked and timed. */
import { openBackend } from '../api/open-backend.js';
import { Random } from '../tensor/random.js';
import { generateProblem } from '../verify/problems.js';
import { runAndCheck } from '../verify/run.js';
import { backendFlag, type Command, intFlag } from './command.js';
import { formatExp, formatNumber, formatTable } from './table.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run a small decode step on the best backend, checked against the reference',
  help: `Usage: flashmla demo [--backend auto|cuda|cpu] [--device N] [--seed N]

Runs a realistic small MLA decode step (b = 4 sequences of about 1024 cached tokens, 16 and
128 query heads, 1 and 2 query tokens, causal, bf16) on the best backend here, checks every output
against the float64 CPU reference with FlashMLA's precision rule, and prints a table.
Exit code 1 if any configuration does not match.

  --backend   auto (the GPU if usable, else the CPU), cuda or cpu; default:
              $FLASHMLA_BACKEND if set, else auto
  --device    CUDA device ordinal (default 0)
  --seed      seed for the random inputs (default: fresh)`,
  options: {
    backend: { type: 'string' },
    device: { type: 'string' },
    seed: { type: 'string' },
  },
  async run(values) {
    const backend = openBackend({
      backend: backendFlag(values.backend),
      device: intFlag('device', values.device, 0),
    });
    const seed = intFlag('seed', values.seed, Random.freshSeed());
    const random = new Random(seed);
    console.log(`flashmla demo on ${backend.description} (seed ${seed})`);
    const rows: string[][] = [];
    let failed = 0;
    for (const numHeadsQ of [16, 128]) {
      for (const seqlenQ of [1, 2]) {
        const problem = generateProblem(
          {
            batch: 4,
            seqlenQ,
            numHeadsQ,
            numHeadsKv: 1,
            meanLength: 1024,
            varlen: 'normal',
            causal: true,
          },
          random,
        );
        const timing =
          backend.kind === 'cuda' ? { warmup: 3, repeats: 20 } : { warmup: 0, repeats: 1 };
        const { verdict, medianMs } = runAndCheck(backend, problem, timing);
        const { report } = verdict;
        if (!verdict.ok) failed++;
        rows.push([
          '4',
          String(seqlenQ),
          String(numHeadsQ),
          String(Math.round(problem.lengths.reduce((a, b) => a + b, 0) / 4)),
          backend.kind === 'cuda' ? formatNumber(medianMs * 1000, 1) : formatNumber(medianMs, 0),
          formatExp(report.outMaxAbsError),
          formatExp(report.lseMaxAbsError),
          verdict.ok ? 'ok' : 'MISMATCH',
        ]);
        if (!verdict.ok) console.error(`${verdict.summary}\n${report.failures.join('\n')}`);
      }
    }
    console.log(
      formatTable(
        [
          { header: 'b' },
          { header: 's_q' },
          { header: 'h_q' },
          { header: 'mean len' },
          { header: backend.kind === 'cuda' ? 'time µs' : 'time ms' },
          { header: 'max |Δout|' },
          { header: 'max |Δlse|' },
          { header: 'check', align: 'left' },
        ],
        rows,
      ),
    );
    return failed === 0 ? 0 : 1;
  },
};
