#!/usr/bin/env node
// Builds the CUDA kernels: every csrc/*.cu to a cubin for sm_90a, plus dist/kernels/layout.json
// (the parameter-struct layout, from scripts/emit-layout.cpp). The library's kernels go to
// dist/kernels/<name>.cubin, the ones only the tests use (TEST_ONLY_SOURCES) to
// dist/test-kernels/, so that the package ships the first folder alone. Each folder gets a
// manifest.json (nvcc version, build time, the kernels of each cubin and their ptxas figures);
// the ptxas reports go to dist/ptxas/<name>.ptxas.txt.
//
//   node scripts/build-kernels.mjs [--require-nvcc] [--package] [--force]
//
// nvcc is $NVCC, else $CUDA_HOME/bin/nvcc, else nvcc on PATH. Without it the kernels are skipped
// with one line on stderr and exit 0 (exit 1 with --require-nvcc); layout.json is still written
// when a host C++ compiler is found. --package (npm pack and publish run it) also checks that
// dist/kernels holds every library kernel, and fails if not where nvcc is found; without nvcc
// it says loudly that the package will have no kernels (the CUDA backend then reports it). A cubin is rebuilt only when its .cu, a csrc header or this
// script is newer. The build fails if a decode kernel spills registers or uses a stack frame.
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptPath = fileURLToPath(import.meta.url);
const root = resolve(dirname(scriptPath), '..');
const csrc = join(root, 'csrc');
const outDir = join(root, 'dist', 'kernels');
const testOutDir = join(root, 'dist', 'test-kernels');
const reportDir = join(root, 'dist', 'ptxas');
/** Sources of kernels that only the tests launch (the GPU oracle): kept out of the package. */
const TEST_ONLY_SOURCES = new Set(['reference.cu']);
const layoutSource = join(root, 'scripts', 'emit-layout.cpp');
const parallelJobs = 2;
const nvccFlags = [
  '-gencode=arch=compute_90a,code=sm_90a',
  '-O3',
  '-std=c++17',
  '--cubin',
  '-Xptxas',
  '-v',
  '-lineinfo',
];
/** Kernels that must not spill or use a stack frame (the build fails otherwise). */
const strictKernel = /decode/;

const args = new Set(process.argv.slice(2));
const requireNvcc = args.has('--require-nvcc');
const forPackage = args.has('--package');
const force = args.has('--force');

function fail(message) {
  console.error(`build-kernels: ${message}`);
  process.exit(1);
}

/** The first path that runs `--version`, or undefined. */
function findTool(candidates) {
  for (const candidate of candidates) {
    if (!candidate) continue;
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (probe.status === 0) return { path: candidate, version: probe.stdout };
  }
  return undefined;
}

function findNvcc() {
  const candidates = [];
  if (process.env.NVCC) candidates.push(process.env.NVCC);
  if (process.env.CUDA_HOME) candidates.push(join(process.env.CUDA_HOME, 'bin', 'nvcc'));
  candidates.push('nvcc');
  return findTool(candidates);
}

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : -Infinity;
}

/** Newest modification time among the things every cubin depends on. */
function sharedInputsTime() {
  const headers = readdirSync(csrc).filter((f) => f.endsWith('.h') || f.endsWith('.cuh'));
  return Math.max(mtime(scriptPath), ...headers.map((f) => mtime(join(csrc, f))));
}

function run(command, commandArgs) {
  return new Promise((resolvePromise) => {
    const child = spawn(command, commandArgs, { cwd: root });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', (error) =>
      resolvePromise({ status: -1, output: `${output}${error.message}\n` }),
    );
    child.on('close', (status) => resolvePromise({ status, output }));
  });
}

/** Runs `task` over `items`, at most `limit` at a time. */
async function inParallel(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The entry functions of a ptxas -v report with their figures:
 * { name, registers, stackFrame, spillStores, spillLoads, staticSmem, barriers }.
 */
function parsePtxasReport(text) {
  const kernels = [];
  let current;
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)'/.exec(line);
    if (entry) {
      current = {
        name: entry[1],
        registers: 0,
        stackFrame: 0,
        spillStores: 0,
        spillLoads: 0,
        staticSmem: 0,
        barriers: 0,
      };
      kernels.push(current);
      continue;
    }
    if (!current) continue;
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(
      line,
    );
    if (frame) {
      current.stackFrame = Number(frame[1]);
      current.spillStores = Number(frame[2]);
      current.spillLoads = Number(frame[3]);
    }
    const used = /Used (\d+) registers/.exec(line);
    if (used) current.registers = Number(used[1]);
    const barriers = /used (\d+) barriers/.exec(line);
    if (barriers) current.barriers = Number(barriers[1]);
    const smem = /(\d+) bytes smem/.exec(line);
    if (smem) current.staticSmem = Number(smem[1]);
  }
  return kernels;
}

function writeLayout() {
  const layoutPath = join(outDir, 'layout.json');
  const headerTime = Math.max(sharedInputsTime(), mtime(layoutSource));
  if (!force && mtime(layoutPath) > headerTime) return 'up to date';
  const compiler = findTool([process.env.CXX, 'g++', 'c++', 'clang++']);
  const binary = join(outDir, 'emit-layout');
  let compile;
  if (compiler) {
    compile = spawnSync(compiler.path, ['-std=c++17', '-I', csrc, layoutSource, '-o', binary], {
      encoding: 'utf8',
    });
  } else {
    const nvcc = findNvcc();
    if (!nvcc) return 'skipped: no host C++ compiler or nvcc';
    compile = spawnSync(
      nvcc.path,
      ['-std=c++17', '-x', 'c++', '-I', csrc, layoutSource, '-o', binary],
      {
        encoding: 'utf8',
      },
    );
  }
  if (compile.status !== 0)
    fail(`emit-layout.cpp did not compile:\n${compile.stdout}${compile.stderr}`);
  const emitted = spawnSync(binary, [], { encoding: 'utf8' });
  rmSync(binary, { force: true });
  if (emitted.status !== 0) fail(`emit-layout failed:\n${emitted.stderr}`);
  JSON.parse(emitted.stdout); // must be valid JSON
  writeFileSync(layoutPath, emitted.stdout);
  return 'written';
}

/** The library's cubins (csrc/*.cu but the test-only ones) not in dist/kernels or its manifest. */
function missingLibraryKernels() {
  const manifestPath = join(outDir, 'manifest.json');
  const listed = existsSync(manifestPath)
    ? JSON.parse(readFileSync(manifestPath, 'utf8')).cubins
    : {};
  return readdirSync(csrc)
    .filter((file) => file.endsWith('.cu') && !TEST_ONLY_SOURCES.has(file))
    .map((file) => `${file.slice(0, -'.cu'.length)}.cubin`)
    .filter((cubin) => !(cubin in listed) || !existsSync(join(outDir, cubin)));
}

async function main() {
  for (const dir of [outDir, testOutDir, reportDir]) mkdirSync(dir, { recursive: true });
  console.log(`build-kernels: layout.json ${writeLayout()}`);

  const nvcc = findNvcc();
  if (!nvcc) {
    console.error(
      "nvcc not found: CUDA kernels not built; the CUDA backend will report 'no kernel binaries'",
    );
    if (forPackage) {
      const missing = missingLibraryKernels();
      if (missing.length > 0) {
        console.error(
          `build-kernels: WARNING: packing without kernel binaries (${missing.join(', ')} missing): ` +
            'where this package is installed only the CPU backend runs. Pack where nvcc 13.0 is found.',
        );
      }
    }
    process.exit(requireNvcc ? 1 : 0);
  }
  const nvccVersion =
    /release [\d.]+, V([\d.]+)/.exec(nvcc.version)?.[1] ?? nvcc.version.trim().split('\n').pop();

  const sources = readdirSync(csrc)
    .filter((f) => f.endsWith('.cu'))
    .sort();
  const sharedTime = sharedInputsTime();
  const results = await inParallel(sources, parallelJobs, async (source) => {
    const name = source.slice(0, -'.cu'.length);
    const dir = TEST_ONLY_SOURCES.has(source) ? testOutDir : outDir;
    const cubin = join(dir, `${name}.cubin`);
    const reportPath = join(reportDir, `${name}.ptxas.txt`);
    const upToDate =
      !force &&
      existsSync(reportPath) &&
      mtime(cubin) > Math.max(sharedTime, mtime(join(csrc, source)));
    if (upToDate)
      return { source, name, dir, built: false, report: readFileSync(reportPath, 'utf8') };
    const started = Date.now();
    const { status, output } = await run(nvcc.path, [
      ...nvccFlags,
      '-o',
      cubin,
      join(csrc, source),
    ]);
    if (status !== 0) return { source, name, dir, error: output };
    writeFileSync(reportPath, output);
    console.log(
      `build-kernels: ${source} -> ${relative(root, cubin)} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    return { source, name, dir, built: true, report: output };
  });

  const failures = results.filter((r) => r.error !== undefined);
  for (const failure of failures)
    console.error(`build-kernels: ${failure.source} failed:\n${failure.error}`);
  if (failures.length > 0)
    fail(`${failures.length} of ${sources.length} sources failed to compile`);

  const builtAt = new Date().toISOString();
  const manifests = new Map(
    [outDir, testOutDir].map((dir) => [dir, { nvccVersion, builtAt, cubins: {}, kernels: {} }]),
  );
  const problems = [];
  for (const result of results) {
    const manifest = manifests.get(result.dir);
    const kernels = parsePtxasReport(result.report);
    manifest.cubins[`${result.name}.cubin`] = kernels.map((k) => k.name);
    for (const kernel of kernels) {
      const { name, ...figures } = kernel;
      manifest.kernels[name] = { cubin: `${result.name}.cubin`, ...figures };
      const spills = kernel.spillStores > 0 || kernel.spillLoads > 0 || kernel.stackFrame > 0;
      if (spills && strictKernel.test(name)) {
        problems.push(
          `${name}: ${kernel.stackFrame} bytes stack frame, ${kernel.spillStores} bytes spill stores, ` +
            `${kernel.spillLoads} bytes spill loads (see dist/ptxas/${result.name}.ptxas.txt)`,
        );
      } else if (spills) {
        console.warn(`build-kernels: warning: ${name} spills or uses a stack frame`);
      }
    }
  }
  if (problems.length > 0) {
    // Remove the offending cubins so that neither the next run nor the CUDA backend trusts them.
    for (const result of results) {
      const cubins = manifests.get(result.dir).cubins;
      if (cubins[`${result.name}.cubin`].some((k) => strictKernel.test(k))) {
        rmSync(join(result.dir, `${result.name}.cubin`), { force: true });
      }
    }
    fail(`decode kernels must not spill or use local memory:\n  ${problems.join('\n  ')}`);
  }
  for (const [dir, manifest] of manifests) {
    writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    // Whatever else an earlier build left here (a kernel since moved, a ptxas report) must not
    // be shipped: the package takes dist/kernels whole.
    for (const file of readdirSync(dir)) {
      const stale =
        file.endsWith('.ptxas.txt') || (file.endsWith('.cubin') && !(file in manifest.cubins));
      if (stale) rmSync(join(dir, file));
    }
  }
  const decode = Object.entries(manifests.get(outDir).kernels).filter(([name]) =>
    strictKernel.test(name),
  );
  for (const [name, k] of decode) {
    console.log(`build-kernels: ${name}: ${k.registers} registers, no spills`);
  }
  if (forPackage) {
    const missing = missingLibraryKernels();
    if (missing.length > 0) fail(`the package would lack kernel binaries: ${missing.join(', ')}`);
  }
  const builtCount = results.filter((r) => r.built).length;
  console.log(
    `build-kernels: ${builtCount} built, ${results.length - builtCount} up to date (nvcc ${nvccVersion})`,
  );
}

main().catch((error) => fail(error.stack ?? String(error)));
