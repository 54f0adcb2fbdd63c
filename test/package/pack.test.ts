/**
 * The package as a user gets it. A copy of the repository as a fresh clone has it (no dist/) is
 * packed with `npm pack` where nvcc is not on the PATH, the tarball is installed into a fresh app
 * (offline: its one dependency, koffi, comes from npm's cache) without running install scripts,
 * and the app decodes through ESM and through CommonJS on the CPU backend and runs
 * `flashmla info`. The tarball must carry the built code, types, README, LICENSE and docs,
 * and nothing test-only; the repository's own build must put every library kernel in it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
/** What a fresh clone does not have: build outputs, installed modules, local machine state. */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.git', '.device', 'out']);

/**
 * npm settings from the environment that the inner npm runs keep (where the cache and the
 * registry are); the rest of an outer `npm test`'s variables (its prefix, its package) would
 * point the inner runs at the repository.
 */
const KEPT_NPM_SETTINGS = new Set([
  'npm_config_cache',
  'npm_config_registry',
  'npm_config_userconfig',
]);

/** The npm CLI script: the one running `npm test`, else the `npm` on the PATH. */
function npmCli(): string {
  if (process.env.npm_execpath) return process.env.npm_execpath;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'npm');
    if (dir !== '' && existsSync(candidate)) return realpathSync(candidate);
  }
  throw new Error('npm not found on the PATH');
}

/**
 * An environment without nvcc: the PATH keeps only directories that hold no `nvcc`, behind a
 * directory of its own with `node` and `npm` (which may share a directory with nvcc), and
 * NVCC/CUDA_HOME are unset; npm's own variables from an outer `npm test` are dropped.
 */
function environmentWithoutNvcc(root: string): NodeJS.ProcessEnv {
  const tools = join(root, 'bin');
  mkdirSync(tools);
  symlinkSync(process.execPath, join(tools, 'node'));
  writeFileSync(join(tools, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli()}" "$@"\n`);
  chmodSync(join(tools, 'npm'), 0o755);
  const path = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && !existsSync(join(dir, 'nvcc')));
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const fromOuterNpm = key.toLowerCase().startsWith('npm_') && !KEPT_NPM_SETTINGS.has(key);
    if (!fromOuterNpm && key !== 'NVCC' && key !== 'CUDA_HOME') env[key] = value;
  }
  return {
    ...env,
    PATH: [tools, ...path].join(delimiter),
    FLASHMLA_BACKEND: '',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
  };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** Every file under `dir`, as paths relative to it with forward slashes. */
function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory()
      ? listFiles(path, base)
      : [relative(base, path).split('\\').join('/')];
  });
}

/** A decode on the CPU, checked against lse computed here from the definition. */
const CONSUMER_BODY = `
const { HostTensor, getMlaMetadata, flashMlaWithKvcache, openBackend } = lib;
const backend = openBackend({ backend: 'cpu' });
let state = 1;
const draw = () => {
  state = (state * 1103515245 + 12345) % 2147483648;
  return state / 2147483648 - 0.5;
};
const batch = 2, heads = 2, lengths = [5, 70];
const q = backend.upload(HostTensor.fromValues('bf16', [batch, 1, heads, 576], Array.from({ length: batch * heads * 576 }, draw)));
const kCache = backend.upload(HostTensor.fromValues('bf16', [3, 64, 1, 576], Array.from({ length: 3 * 64 * 576 }, draw)));
const blockTable = HostTensor.fromValues('int32', [batch, 2], [2, -1, 0, 1]);
const cacheSeqlens = HostTensor.fromValues('int32', [batch], lengths);
const { tileSchedulerMetadata, numSplits } = getMlaMetadata(cacheSeqlens, heads, 1);
const { out, lse } = flashMlaWithKvcache(q, kCache, blockTable, cacheSeqlens, 512, tileSchedulerMetadata, numSplits);
let worstLseError = 0;
for (let i = 0; i < batch; i++) {
  for (let h = 0; h < heads; h++) {
    const scores = [];
    for (let t = 0; t < lengths[i]; t++) {
      const block = blockTable.get(i, Math.floor(t / 64));
      let dot = 0;
      for (let c = 0; c < 576; c++) dot += q.get(i, 0, h, c) * kCache.get(block, t % 64, 0, c);
      scores.push(dot / Math.sqrt(576));
    }
    const max = Math.max(...scores);
    const expected = max + Math.log(scores.reduce((sum, s) => sum + Math.exp(s - max), 0));
    worstLseError = Math.max(worstLseError, Math.abs(lse.get(i, h, 0) - expected));
  }
}
console.log(JSON.stringify({
  shape: out.shape,
  finite: Array.from(out.toFloat64Array()).every(Number.isFinite),
  worstLseError,
}));
`;

test('npm pack of a fresh clone installs into a fresh app without nvcc and decodes from ESM and CommonJS', {
  timeout: 600_000,
}, (t) => {
  const root = mkdtempSync(join(tmpdir(), 'flashmla-pack-'));
  try {
    const env = environmentWithoutNvcc(root);
    const clone = join(root, 'clone');
    mkdirSync(clone);
    for (const entry of readdirSync(REPO)) {
      if (!NOT_IN_A_CLONE.has(entry) && !entry.endsWith('.tgz')) {
        cpSync(join(REPO, entry), join(clone, entry), { recursive: true });
      }
    }
    // The dev tools a clone gets from `npm ci`, without copying them.
    symlinkSync(join(REPO, 'node_modules'), join(clone, 'node_modules'), 'dir');

    const packed = run('npm', ['pack', '--pack-destination', root], clone, env);
    assert.equal(packed.status, 0, `npm pack failed:\n${packed.stdout}\n${packed.stderr}`);
    assert.match(packed.stderr, /nvcc not found/, 'nvcc was hidden from the build');
    assert.match(packed.stderr, /packing without kernel binaries/, 'and the pack says so');
    const tarball = readdirSync(root).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, `no tarball in ${readdirSync(root)}`);

    const unpacked = join(root, 'unpacked');
    mkdirSync(unpacked);
    const untar = run('tar', ['-xzf', join(root, tarball), '-C', unpacked], root, env);
    assert.equal(untar.status, 0, untar.stderr);
    checkPackageContents(join(unpacked, 'package'));

    const app = join(root, 'app');
    mkdirSync(app);
    const installed = installTarball(app, join(root, tarball), env);
    if (installed.status !== 0 && /ENOTCACHED/.test(installed.stderr)) {
      t.skip(`koffi is not in npm's cache (run npm ci first): ${installed.stderr.split('\n')[0]}`);
      return;
    }
    assert.equal(installed.status, 0, `npm ci failed:\n${installed.stderr}`);

    writeFileSync(join(app, 'consumer.mjs'), `import * as lib from 'flashmla';\n${CONSUMER_BODY}`);
    writeFileSync(join(app, 'consumer.cjs'), `const lib = require('flashmla');\n${CONSUMER_BODY}`);
    // require() of an ES module needs Node 20.19 / 22.12 (the range in engines).
    const requireEsm = (process.features as { require_module?: boolean }).require_module === true;
    if (!requireEsm)
      t.diagnostic(`CommonJS consumer not run: Node ${process.version} has no require(esm)`);
    for (const consumer of requireEsm ? ['consumer.mjs', 'consumer.cjs'] : ['consumer.mjs']) {
      const decoded = run(process.execPath, [consumer], app, env);
      assert.equal(decoded.status, 0, `${consumer}:\n${decoded.stderr}`);
      const result = JSON.parse(decoded.stdout.trim().split('\n').pop() ?? '{}');
      assert.deepEqual(result.shape, [2, 1, 2, 512], consumer);
      assert.equal(result.finite, true, consumer);
      assert.ok(result.worstLseError < 1e-3, `${consumer}: lse off by ${result.worstLseError}`);
      assert.doesNotMatch(decoded.stderr, /ExperimentalWarning/, consumer);
    }

    const bin = join(app, 'node_modules', '.bin', 'flashmla');
    const info = run(bin, ['info', '--json'], app, env);
    assert.equal(info.status, 0, info.stderr);
    const report = JSON.parse(info.stdout);
    assert.equal(
      report.flashmla,
      JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version,
    );
    assert.doesNotMatch(report.cuda.detail, /koffi/, 'koffi loads without its install script');
    assert.equal(report.kernels.present, false, 'packed without nvcc: no kernels');
    assert.match(info.stdout, /install a release of the package/, 'and the fix says what to do');
    for (const command of ['info', 'demo', 'check', 'bench']) {
      const help = run(bin, [command, '--help'], app, env);
      assert.equal(help.status, 0, help.stderr);
      assert.doesNotMatch(
        help.stdout,
        /BENCHMARK\.md|TESTING\.md|DESIGN\.md|\.\.\/shared/,
        command,
      );
      for (const [, doc] of help.stdout.matchAll(/\b(docs\/[\w.-]+\.md)/g)) {
        assert.ok(
          existsSync(join(app, 'node_modules', 'flashmla', doc)),
          `${command} --help cites ${doc}`,
        );
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * Installs the tarball into the fresh app at `app` as its one dependency, offline and without
 * install scripts. npm resolves the tarball's own dependency (koffi) from registry metadata,
 * which `npm ci` does not cache; so the app gets a lockfile that pins koffi (and its prebuilt
 * binary packages) to the entries of the repository's lockfile, whose tarballs `npm ci` did
 * cache, and `npm ci` installs from it.
 */
function installTarball(app: string, tarball: string, env: NodeJS.ProcessEnv) {
  const name = basename(tarball);
  cpSync(tarball, join(app, name));
  const manifest = { name: 'consumer', version: '1.0.0', private: true };
  const dependencies = { flashmla: `file:${name}` };
  const packed = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const repoLock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, unknown>;
  };
  const packages: Record<string, unknown> = {
    '': { ...manifest, dependencies },
    'node_modules/flashmla': {
      version: packed.version,
      resolved: `file:${name}`,
      license: packed.license,
      dependencies: packed.dependencies,
      bin: packed.bin,
      engines: packed.engines,
    },
  };
  for (const [path, entry] of Object.entries(repoLock.packages)) {
    if (path === 'node_modules/koffi' || path.startsWith('node_modules/@koromix/')) {
      packages[path] = entry;
    }
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ ...manifest, dependencies }));
  writeFileSync(
    join(app, 'package-lock.json'),
    JSON.stringify({ ...manifest, lockfileVersion: 3, requires: true, packages }),
  );
  return run('npm', ['ci', '--offline', '--ignore-scripts'], app, env);
}

/** What the tarball holds, unpacked at `pkg`. */
function checkPackageContents(pkg: string): void {
  const files = listFiles(pkg);
  for (const required of [
    'package.json',
    'README.md',
    'LICENSE',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
    'docs/semantics.md',
    'docs/testing.md',
    'docs/benchmark.md',
  ]) {
    assert.ok(files.includes(required), `the package lacks ${required}`);
  }
  const testOnly = files.filter((file) =>
    /^(src|test|scripts|csrc|bench\/[^r]|dist\/(test|bench|test-kernels|ptxas)\/)|\.ptxas\.txt$|\.tsbuildinfo$/.test(
      file,
    ),
  );
  assert.deepEqual(testOnly, [], 'sources, tests, build scripts, test kernels or ptxas logs');

  for (const map of files.filter((file) => file.endsWith('.map'))) {
    const { sources, sourcesContent } = JSON.parse(readFileSync(join(pkg, map), 'utf8')) as {
      sources: string[];
      sourcesContent?: (string | null)[];
    };
    sources.forEach((source, i) => {
      const shipped = existsSync(resolve(pkg, dirname(map), source));
      assert.ok(shipped || typeof sourcesContent?.[i] === 'string', `${map} points at ${source}`);
    });
  }

  for (const doc of files.filter((file) => file.endsWith('.md'))) {
    const text = readFileSync(join(pkg, doc), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target) || target.startsWith('#')) continue;
      const path = target.split('#')[0];
      assert.ok(existsSync(resolve(pkg, dirname(doc), path)), `${doc} links to ${target}`);
    }
  }

  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  assert.equal(manifest.license, 'MIT');
  assert.match(manifest.repository?.url ?? '', /^git\+https:\/\//);
  assert.equal(manifest.engines?.node, '^20.19.0 || >=22.12.0');
  assert.match(readFileSync(join(pkg, 'LICENSE'), 'utf8'), /MIT License/);
}

test('the repository build puts every library kernel in the package, and no test kernel', {
  skip: existsSync(join(REPO, 'dist', 'kernels', 'manifest.json'))
    ? false
    : 'no kernels were built here (nvcc not found); CI builds them with --require-nvcc',
}, () => {
  // --ignore-scripts: list what the current build would ship, without building again.
  const listed = run(
    process.execPath,
    [npmCli(), 'pack', '--dry-run', '--json', '--ignore-scripts'],
    REPO,
    process.env,
  );
  assert.equal(listed.status, 0, listed.stderr);
  const start = listed.stdout.search(/^\[/m);
  const files = (JSON.parse(listed.stdout.slice(start))[0].files as { path: string }[]).map(
    (file) => file.path,
  );
  const manifest = JSON.parse(readFileSync(join(REPO, 'dist', 'kernels', 'manifest.json'), 'utf8'));
  for (const cubin of Object.keys(manifest.cubins)) {
    assert.ok(files.includes(`dist/kernels/${cubin}`), `the package lacks ${cubin}`);
  }
  const csrc = readdirSync(join(REPO, 'csrc')).filter((file) => file.endsWith('.cu'));
  const testKernels = join(REPO, 'dist', 'test-kernels', 'manifest.json');
  const testOnly = existsSync(testKernels)
    ? Object.keys(JSON.parse(readFileSync(testKernels, 'utf8')).cubins)
    : [];
  assert.equal(
    Object.keys(manifest.cubins).length + testOnly.length,
    csrc.length,
    'every kernel source is built, for the package or for the tests',
  );
  for (const cubin of testOnly) {
    assert.ok(!files.some((file) => file.endsWith(`/${cubin}`)), `${cubin} is test-only`);
  }
  assert.deepEqual(
    files.filter((file) => file.endsWith('.ptxas.txt')),
    [],
  );
});
