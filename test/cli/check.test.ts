import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type CheckConfig,
  describeCheckConfig,
  drawCheckConfig,
  estimateCost,
  runCheck,
} from '../../src/cli/check.js';
import { cpuBackend } from '../../src/cpu-backend/backend.js';
import { Random } from '../../src/tensor/random.js';
import { judgeDecode } from '../../src/verify/precision.js';
import { runAndCheck } from '../../src/verify/run.js';
import { runCli } from './support.js';

test('configurations come from TESTING.md’s matrix, fit the cost bound, and repeat for a seed', () => {
  const random = new Random(11);
  const configs = Array.from({ length: 300 }, () => drawCheckConfig(random, 100_000));
  for (const config of configs) {
    assert.ok(estimateCost(config) <= 100_000, describeCheckConfig(config));
    assert.equal(config.numHeadsQ % config.numHeadsKv, 0);
    assert.ok([1, 2, 6, 64].includes(config.batch));
    assert.ok([1, 2, 3, 4].includes(config.seqlenQ));
    assert.ok([0, 1, 20, 63, 64, 65, 127, 128, 140, 4096].includes(config.meanLength));
  }
  // Every value of the cheap dimensions shows up in 300 draws.
  const seen = (pick: (c: CheckConfig) => unknown) => new Set(configs.map(pick)).size;
  assert.equal(
    seen((c) => c.varlen),
    3,
  );
  assert.equal(
    seen((c) => c.dtype),
    2,
  );
  assert.equal(
    seen((c) => c.causal),
    2,
  );
  assert.equal(
    seen((c) => c.paddedStrides),
    2,
  );
  assert.equal(
    seen((c) => c.data),
    4,
  );
  assert.equal(
    seen((c) => c.softmaxScale),
    3,
  );
  assert.equal(
    seen((c) => c.paddingEntry),
    3,
  );
  assert.ok(seen((c) => c.numHeadsKv) >= 3);
  const again = new Random(11);
  assert.deepEqual(
    Array.from({ length: 300 }, () => drawCheckConfig(again, 100_000)),
    configs,
  );
});

test('the cost estimate counts reference pairs and generated elements', () => {
  const config = drawCheckConfig(new Random(1), 1e12);
  const fixed = {
    ...config,
    batch: 2,
    seqlenQ: 2,
    meanLength: 100,
    numHeadsQ: 16,
    numHeadsKv: 2,
    varlen: 'off' as const,
  };
  // tokens 200 · (2·16 + 10·2) + 10 · (2·2·16) = 10,400 + 640.
  assert.equal(estimateCost(fixed), 11_040);
  assert.equal(estimateCost({ ...fixed, varlen: 'half-empty' }), 100 * 52 + 640);
});

function collect() {
  const log: string[] = [];
  const error: string[] = [];
  return {
    log,
    error,
    output: { log: (l: string) => log.push(l), error: (l: string) => error.push(l) },
  };
}

const settings = {
  seed: 7,
  count: 4,
  maxCost: 200_000,
  verbose: true,
  backendFlag: '--backend cpu',
};

test('check passes on the CPU backend for a fixed seed, and says what it ran', () => {
  const { log, error, output } = collect();
  assert.equal(runCheck(cpuBackend, settings, output), 0);
  assert.deepEqual(error, []);
  assert.match(log[0], /4 random configurations on cpu .*seed 7/);
  assert.equal(log.filter((l) => /^#\d ok b=/.test(l)).length, 4);
  assert.match(
    log[log.length - 1],
    /^4 configurations: 4 match, 0 mismatch \(worst error\/bound: element 0\.\d+, row \S+, tensor \S+, lse \S+\); seed 7;/,
  );
});

test('check exits 1 on a mismatch and prints the seed, the configuration and how to reproduce', () => {
  // A faulty backend in effect: every run's lse is off by one in its first element, and the
  // verdict is the real precision rule's.
  const faulty: typeof runAndCheck = (backend, problem, timing) => {
    const run = runAndCheck(backend, problem, timing);
    const first = run.lse.get(0, 0, 0);
    run.lse.set(Number.isFinite(first) ? first + 1 : 0, 0, 0, 0);
    return { ...run, verdict: judgeDecode(run, problem) };
  };
  const { log, error, output } = collect();
  assert.equal(runCheck(cpuBackend, { ...settings, count: 2, verbose: false }, output, faulty), 1);
  const text = error.join('\n');
  assert.match(text, /^#0 MISMATCH b=\d+ s_q=\d .*h_q=\d+ h_kv=\d/m);
  assert.match(text, /lse\[b=0, h=0, s=0\]: got/);
  assert.match(
    text,
    /reproduce: flashmla check --backend cpu --seed 7 --count 1 --max-cost 200000/,
  );
  assert.match(
    text,
    /reproduce: flashmla check --backend cpu --seed 7 --count 2 --max-cost 200000/,
  );
  assert.match(log[log.length - 1], /^2 configurations: 0 match, 2 mismatch \(.*\); seed 7;/);
  // The same seed draws the same configurations as the passing run above.
  const passing = collect();
  runCheck(cpuBackend, { ...settings, count: 2 }, passing.output);
  const drawn = (lines: string[]) =>
    lines
      .filter((l) => l.startsWith('#'))
      .map((l) => l.split('\n')[0].replace(/^#\d (ok|MISMATCH) /, ''));
  assert.deepEqual(drawn(error), drawn(passing.log));
});

test('flashmla check runs from the command line with a printed seed', () => {
  const result = runCli([
    'check',
    '--backend',
    'cpu',
    '--seed',
    '3',
    '--count',
    '3',
    '--max-cost',
    '100000',
  ]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /seed 3/);
  assert.match(result.stdout, /3 configurations: 3 match/);
  const fresh = runCli(['check', '--backend', 'cpu', '--count', '1', '--max-cost', '10000']);
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.match(fresh.stdout, /\(seed \d+, max cost 10000\)/);
});
