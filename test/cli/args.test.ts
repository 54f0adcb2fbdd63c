import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './support.js';

test('--help prints each command’s usage and exits 0; no command exits 2 with the list', () => {
  const top = runCli(['--help']);
  assert.equal(top.status, 0);
  for (const name of ['info', 'demo', 'check', 'bench'])
    assert.match(top.stdout, new RegExp(`\\n  ${name} `));
  const none = runCli([]);
  assert.equal(none.status, 2);
  assert.match(none.stdout, /Usage: flashmla <command>/);
  for (const name of ['bench', 'check']) {
    const help = runCli([name, '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`^Usage: flashmla ${name} `));
    assert.equal(help.stderr, '');
  }
  assert.match(runCli(['bench', '-h']).stdout, /--varlen on\|off\|both/);
  assert.match(runCli(['check', '--help']).stdout, /--max-cost/);
});

test('bad flags and values exit 2 with a message naming the flag, before any work', () => {
  const cases: [string[], RegExp][] = [
    [['nonsense'], /unknown command 'nonsense'/],
    [['bench', '--bogus'], /Unknown option '--bogus'/],
    [['bench', 'extra'], /unexpected argument 'extra'/],
    [['bench', '--heads', '16,x'], /--heads expects an integer >= 1, got 'x'/],
    [['bench', '--lengths', ''], /--lengths expects a comma-separated list of integers/],
    [['bench', '--lengths', '4096,0'], /--lengths expects an integer >= 1, got '0'/],
    [['bench', '--sq', '1.5'], /--sq expects an integer >= 1, got '1.5'/],
    [['bench', '--batch', '0'], /--batch expects an integer >= 1, got '0'/],
    [['bench', '--varlen', 'maybe'], /--varlen expects one of on, off, both, got 'maybe'/],
    [['bench', '--causal', 'yes'], /--causal expects one of on, off, got 'yes'/],
    [['bench', '--dtype', 'fp32'], /--dtype expects one of bf16, fp16, got 'fp32'/],
    [['bench', '--repeats', '0'], /--repeats expects an integer >= 1, got '0'/],
    [['bench', '--warmup=-1'], /--warmup expects an integer >= 0, got '-1'/],
    [['bench', '--seed', 'abc'], /--seed expects an integer >= 0, got 'abc'/],
    [['bench', '--backend', 'tpu'], /--backend expects one of auto, cuda, cpu, got 'tpu'/],
    [['bench', '--json', '--csv'], /--json and --csv cannot be combined/],
    [['bench', '--plot'], /--plot/],
    [['bench', '--save', ''], /--save expects a path/],
    [['check', '--count', '0'], /--count expects an integer >= 1, got '0'/],
    [['check', '--max-cost', '5'], /--max-cost expects an integer >= 1000, got '5'/],
    [['check', '--seed=-3'], /--seed expects an integer >= 0, got '-3'/],
    [['check', '--device', 'gpu0'], /--device expects an integer >= 0, got 'gpu0'/],
    [['check', '--verbose=yes'], /--verbose/],
  ];
  for (const [args, message] of cases) {
    const result = runCli(args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
    assert.match(result.stderr, /--help' for usage/, args.join(' '));
    assert.equal(result.stdout, '', args.join(' '));
  }
});
