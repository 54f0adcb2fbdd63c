/**
 * What the CLI does with a user's mistakes: one clean line and a non-zero exit, never a stack
 * trace, and before any work (an output path that cannot be written costs no benchmark run);
 * negative numbers reach our own checks; an explicit --backend wins over FLASHMLA_BACKEND, which
 * only replaces the default, and a FLASHMLA_BACKEND that names no backend is an error everywhere.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CliResult, runCli } from './support.js';

function assertCleanFailure(result: CliResult, status: number, message: RegExp, label: string) {
  assert.equal(result.status, status, `${label}: exit ${result.status}\n${result.stderr}`);
  assert.match(result.stderr, message, label);
  assert.doesNotMatch(result.stderr, /\n\s+at /, `${label}: no stack trace`);
  assert.ok(result.stderr.startsWith('flashmla: '), `${label}: ${result.stderr}`);
}

test('negative numbers reach the flag checks, with our message', () => {
  const cases: [string[], RegExp][] = [
    [['check', '--count', '-1'], /--count expects an integer >= 1, got '-1'/],
    [['check', '--seed', '-5'], /--seed expects an integer >= 0, got '-5'/],
    [['check', '--device', '-1'], /--device expects an integer >= 0, got '-1'/],
    [['bench', '--warmup', '-3'], /--warmup expects an integer >= 0, got '-3'/],
    [['bench', '--batch', '-2.5'], /--batch expects an integer >= 1, got '-2\.5'/],
    [['demo', '--seed', '-.5'], /--seed expects an integer >= 0, got '-\.5'/],
  ];
  for (const [args, message] of cases) {
    const result = runCli(args);
    assertCleanFailure(result, 2, message, args.join(' '));
    assert.equal(result.stdout, '');
  }
});

test('output paths are checked before any work: a bad --save or --plot fails at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flashmla-cli-out-'));
  try {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--save', join(file, 'results')], /--save: .*a-file is not a directory/],
      [['--plot', join(file, 'chart.svg')], /--plot: .*a-file is not a directory/],
      [['--plot', dir], /--plot: .* is a directory, not a file/],
    ];
    if (existsSync('/proc/self')) {
      cases.push([['--save', '/proc/nope'], /--save: cannot create directory \/proc\/nope/]);
      cases.push([['--plot', '/proc/chart.svg'], /--plot: cannot write in \/proc/]);
    }
    for (const [flags, message] of cases) {
      // The CPU backend's default matrix takes seconds: failing well within that shows it never ran.
      const started = performance.now();
      const result = runCli(['bench', '--backend', 'cpu', ...flags]);
      const seconds = (performance.now() - started) / 1000;
      assertCleanFailure(result, 2, message, flags.join(' '));
      assert.equal(result.stdout, '', 'no benchmark output');
      assert.ok(seconds < 5, `${flags.join(' ')} took ${seconds.toFixed(1)} s`);
    }
    assert.equal(existsSync(join(dir, 'results')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const TINY_BENCH = [
  'bench',
  '--backend',
  'cpu',
  '--quick',
  '--heads',
  '16',
  '--sq',
  '1',
  '--lengths',
  '64',
  '--repeats',
  '1',
  '--warmup',
  '0',
  '--json',
];

test('a write that fails after the work (a full disk) is one line, not a stack trace', {
  skip: existsSync('/dev/full') ? false : 'no /dev/full here to stand for a full disk',
}, () => {
  const result = runCli([...TINY_BENCH, '--plot', '/dev/full']);
  // Where /dev is not writable the path check refuses it first (2); else the write fails (1).
  assert.ok(result.status === 1 || result.status === 2, `exit ${result.status}: ${result.stderr}`);
  assert.match(result.stderr, /^flashmla: .*(ENOSPC|--plot)/m);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
});

test('--save creates its directory, parents included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flashmla-cli-save-'));
  try {
    const target = join(dir, 'deeper', 'results');
    const result = runCli([...TINY_BENCH, '--save', target]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /results saved to .*deeper.results/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an explicit --backend wins over FLASHMLA_BACKEND, which replaces the default only', () => {
  const small = ['check', '--count', '1', '--seed', '3', '--max-cost', '1000'];
  const fromEnvironment = runCli(small, { FLASHMLA_BACKEND: 'cpu' });
  assert.equal(fromEnvironment.status, 0, fromEnvironment.stderr);
  assert.match(fromEnvironment.stdout, / on cpu /);
  const explicit = runCli([...small, '--backend', 'cpu'], { FLASHMLA_BACKEND: 'cuda' });
  assert.equal(explicit.status, 0, `the explicit cpu wins over cuda: ${explicit.stderr}`);
  assert.match(explicit.stdout, / on cpu /);
  assert.match(
    runCli(['info'], { FLASHMLA_BACKEND: 'cpu' }).stdout,
    /default backend: cpu \(FLASHMLA_BACKEND=cpu\)/,
  );
});

test('a FLASHMLA_BACKEND that names no backend is an error everywhere, info included', () => {
  const env = { FLASHMLA_BACKEND: 'bogus' };
  const message = /FLASHMLA_BACKEND: expected one of auto, cuda, cpu \(or unset\), got "bogus"/;
  for (const args of [
    ['info'],
    ['info', '--json'],
    ['demo', '--backend', 'cpu'],
    ['check', '--count', '1'],
    ['bench', '--quick'],
  ]) {
    const result = runCli(args, env);
    assertCleanFailure(result, 1, message, args.join(' '));
  }
  const info = runCli(['info'], env);
  assert.match(info.stdout, /default backend: none: FLASHMLA_BACKEND names no backend/);
  assert.match(info.stdout, /backends:/, 'the rest of the report is still there');
  const json = JSON.parse(runCli(['info', '--json'], env).stdout);
  assert.equal(json.defaultBackend.choice, null);
  assert.match(json.defaultBackend.error, message);
});
