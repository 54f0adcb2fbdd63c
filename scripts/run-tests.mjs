#!/usr/bin/env node
// Runs the compiled test files with node's test runner. Node 20's runner takes no globs, so this
// lists them: every dist/test/**/*.test.js, or only those under dist/test/gpu with --gpu.
// GPU tests skip themselves, with the reason, where no usable GPU is found.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const gpuOnly = process.argv.includes('--gpu');
const root = gpuOnly ? 'dist/test/gpu' : 'dist/test';

function collect(dir) {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return collect(path);
      return name.endsWith('.test.js') ? [path] : [];
    });
}

const files = collect(root);
if (files.length === 0) {
  console.error(`no test files under ${root}: run npm run build first`);
  process.exit(1);
}
// GPU test files share one device: run them one at a time.
const concurrency = gpuOnly
  ? 1
  : Math.max(1, Math.min(4, (await import('node:os')).availableParallelism()));
const extra = process.argv.slice(2).filter((arg) => arg !== '--gpu');
const result = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, ...extra, ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
