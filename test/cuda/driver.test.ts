// The CUDA layer's behaviour that needs no GPU: lazy loading, the probe, error messages, and the
// argument checks that must fail before anything reaches the driver.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CudaDevice } from '../../src/cuda/device.js';
import { formatDriverVersion, loadDriver } from '../../src/cuda/driver.js';
import { CudaContextLostError, CudaError, isStickyCudaResult } from '../../src/cuda/errors.js';
import {
  encodeProgrammaticLaunchConfig,
  type LaunchConfig,
  PROGRAMMATIC_LAUNCH_BLOCK_BYTES,
  validateLaunchConfig,
} from '../../src/cuda/module.js';
import { probeCuda } from '../../src/cuda/probe.js';
import { type TensorMapTiledOptions, validateTensorMapTiled } from '../../src/cuda/tensor-map.js';
import {
  GpuUnavailableError,
  LimitError,
  OptionError,
  ShapeError,
  StrideError,
} from '../../src/errors.js';

/** Why the driver cannot be loaded here, or null where it can (a GPU machine). */
function driverLoadFailure(): GpuUnavailableError | null {
  try {
    loadDriver();
    return null;
  } catch (error) {
    assert.ok(error instanceof GpuUnavailableError, `loadDriver threw ${String(error)}`);
    return error;
  }
}

test('every CUDA module imports without a driver', async () => {
  const modules = [
    'driver',
    'errors',
    'device',
    'memory',
    'stream',
    'event',
    'module',
    'graph',
    'tensor-map',
    'device-tensor',
    'probe',
    'poll',
  ];
  for (const name of modules) {
    await import(`../../src/cuda/${name}.js`);
  }
});

test('probeCuda never throws and says why the GPU is unusable', () => {
  const result = probeCuda();
  if (result.ok) {
    assert.equal(result.device.computeCapability.major, 9);
    return;
  }
  assert.ok(result.reason.length > 0);
  assert.ok(result.fix.length > 0);
  const failure = driverLoadFailure();
  if (failure !== null) {
    assert.equal(result.reason, failure.reason);
    assert.equal(result.fix, failure.fix);
    assert.match(result.reason, /libcuda\.so\.1|koffi|Linux/);
  }
});

test('probeCuda reports a missing device ordinal instead of throwing', () => {
  const result = probeCuda(1_000_000);
  assert.equal(result.ok, false);
});

test('without libcuda the first real use throws GpuUnavailableError naming the driver', (t) => {
  const failure = driverLoadFailure();
  if (failure === null) {
    t.skip('libcuda.so.1 loads on this machine');
    return;
  }
  assert.throws(() => CudaDevice.count(), GpuUnavailableError);
  assert.throws(() => CudaDevice.open(0), GpuUnavailableError);
  assert.match(failure.message, /CUDA backend unavailable: /);
  assert.match(failure.fix, /R580/);
});

test('CudaError names the call, the result and the driver message', () => {
  const error = new CudaError({
    result: 2,
    resultName: 'CUDA_ERROR_OUT_OF_MEMORY',
    driverMessage: 'out of memory',
    call: 'cuMemAlloc_v2',
  });
  assert.equal(error.code, 'ERR_CUDA');
  assert.equal(error.name, 'CudaError');
  assert.equal(error.result, 2);
  assert.equal(error.call, 'cuMemAlloc_v2');
  assert.equal(
    error.message,
    'cuMemAlloc_v2 failed with CUDA_ERROR_OUT_OF_MEMORY (2): out of memory',
  );
});

test('CudaContextLostError repeats the original failure and names the refused call', () => {
  const original = {
    result: 700,
    resultName: 'CUDA_ERROR_ILLEGAL_ADDRESS',
    driverMessage: 'an illegal memory access was encountered',
    call: 'cuStreamSynchronize',
  };
  const first = new CudaContextLostError(0, original);
  assert.equal(first.code, 'ERR_CUDA_CONTEXT_LOST');
  assert.equal(first.name, 'CudaContextLostError');
  assert.ok(first instanceof CudaError);
  assert.equal(first.call, 'cuStreamSynchronize');
  assert.match(
    first.message,
    /^the CUDA context of cuda:0 is lost: cuStreamSynchronize failed with CUDA_ERROR_ILLEGAL_ADDRESS \(700\)/,
  );
  assert.match(first.message, /restart the process/);

  const later = new CudaContextLostError(3, original, 'cuMemAlloc_v2');
  assert.equal(later.call, 'cuMemAlloc_v2');
  assert.equal(later.result, 700);
  assert.equal(later.resultName, 'CUDA_ERROR_ILLEGAL_ADDRESS');
  assert.equal(later.original, original);
  assert.match(
    later.message,
    /^cuMemAlloc_v2 was not run: the CUDA context of cuda:3 is lost: cuStreamSynchronize failed/,
  );
});

test('sticky results are the ones cuda.h says leave the context unusable', () => {
  for (const result of [214, 226, 700, 702, 710, 714, 715, 716, 717, 718, 719, 721, 810, 911]) {
    assert.equal(isStickyCudaResult(result), true, `${result}`);
  }
  for (const result of [0, 1, 2, 100, 200, 209, 400, 600, 701, 720, 901, 999]) {
    assert.equal(isStickyCudaResult(result), false, `${result}`);
  }
});

test('formatDriverVersion reads the driver API version integer', () => {
  assert.equal(formatDriverVersion(13000), '13.0');
  assert.equal(formatDriverVersion(12080), '12.8');
  assert.equal(formatDriverVersion(13010), '13.1');
});

const goodLaunch: LaunchConfig = {
  grid: [132, 1, 1],
  block: [256, 1, 1],
  sharedBytes: 200 * 1024,
  params: new Uint8Array(512),
};

function launchError(change: Partial<LaunchConfig>): unknown {
  try {
    validateLaunchConfig({ ...goodLaunch, ...change });
  } catch (error) {
    return error;
  }
  return undefined;
}

test('launch validation accepts the limits themselves', () => {
  validateLaunchConfig(goodLaunch);
  validateLaunchConfig({ ...goodLaunch, grid: [2 ** 31 - 1, 65535, 65535] });
  validateLaunchConfig({ ...goodLaunch, block: [1024, 1, 1], params: new Uint8Array(0) });
  validateLaunchConfig({ ...goodLaunch, block: [16, 1, 64] });
});

test('launch validation names the grid dimension that is out of range', () => {
  const cases: [Partial<LaunchConfig>, string, string][] = [
    [{ grid: [2 ** 31, 1, 1] }, 'grid[0]', '2147483648'],
    [{ grid: [1, 65536, 1] }, 'grid[1]', '65536'],
    [{ grid: [1, 1, 65536] }, 'grid[2]', '65536'],
    [{ grid: [0, 1, 1] }, 'grid[0]', '0'],
    [{ grid: [1.5, 1, 1] }, 'grid[0]', '1.5'],
    [{ block: [1025, 1, 1] }, 'block[0]', '1025'],
    [{ block: [1, 1, 65] }, 'block[2]', '65'],
  ];
  for (const [change, argument, actual] of cases) {
    const error = launchError(change);
    assert.ok(error instanceof LimitError, `${argument}: ${String(error)}`);
    assert.equal(error.argument, argument);
    assert.equal(error.actual, actual);
  }
});

test('launch validation checks threads per block, shared memory and the parameter block', () => {
  const tooManyThreads = launchError({ block: [512, 4, 1] });
  assert.ok(tooManyThreads instanceof LimitError);
  assert.equal(tooManyThreads.argument, 'block');
  assert.match(tooManyThreads.message, /2048 threads/);

  const negativeShared = launchError({ sharedBytes: -1 });
  assert.ok(negativeShared instanceof LimitError);
  assert.equal(negativeShared.argument, 'sharedBytes');

  const notBytes = launchError({ params: [1, 2, 3] as unknown as Uint8Array });
  assert.ok(notBytes instanceof OptionError);
  assert.equal(notBytes.argument, 'params');

  const tooBig = launchError({ params: new Uint8Array(32768) });
  assert.ok(tooBig instanceof LimitError);
  assert.equal(tooBig.argument, 'params');

  const twoDims = launchError({ grid: [1, 1] as unknown as [number, number, number] });
  assert.ok(twoDims instanceof OptionError);
  assert.equal(twoDims.argument, 'grid');
});

test('the programmatic launch config is laid out as cuda.h declares CUlaunchConfig', () => {
  const block = new Uint8Array(PROGRAMMATIC_LAUNCH_BLOCK_BYTES).fill(0xee);
  const address = 0x7f00_1234_5000n;
  encodeProgrammaticLaunchConfig(block, address, {
    grid: [7, 8, 9],
    block: [256, 2, 1],
    sharedBytes: 123456,
    stream: 0xdead_beef_0000n,
  });
  const view = new DataView(block.buffer);
  const words = [0, 4, 8, 12, 16, 20, 24].map((offset) => view.getUint32(offset, true));
  assert.deepEqual(words, [7, 8, 9, 256, 2, 1, 123456]);
  assert.equal(view.getUint32(28, true), 0, 'padding before hStream');
  assert.equal(view.getBigUint64(32, true), 0xdead_beef_0000n, 'hStream at 32');
  assert.equal(view.getBigUint64(40, true), address + 64n, 'attrs at 40 points at byte 64');
  assert.equal(view.getUint32(48, true), 1, 'numAttrs at 48');
  assert.equal(view.getUint32(64, true), 6, 'id = PROGRAMMATIC_STREAM_SERIALIZATION');
  assert.equal(view.getInt32(72, true), 1, 'value.programmaticStreamSerializationAllowed');
  assert.ok(
    block.subarray(76).every((byte) => byte === 0),
    'rest of the 64-byte value union',
  );
  assert.equal(PROGRAMMATIC_LAUNCH_BLOCK_BYTES, 64 + 72);
});

/** A K-cache-like tile: bf16 rows of 576, 64-row boxes of 64 columns, 128-byte swizzle. */
const goodMap: TensorMapTiledOptions = {
  dtype: 'bf16',
  globalAddress: 0x7f00_0000_0000n,
  globalDims: [576, 64 * 1000],
  globalStridesBytes: [576 * 2],
  boxDims: [64, 64],
  swizzle: '128B',
};

function mapError(change: Partial<TensorMapTiledOptions>): unknown {
  try {
    validateTensorMapTiled({ ...goodMap, ...change });
  } catch (error) {
    return error;
  }
  return undefined;
}

test('tensor map validation accepts the decode kernel shapes', () => {
  validateTensorMapTiled(goodMap);
  validateTensorMapTiled({ ...goodMap, dtype: 'fp16', l2Promotion: '256B', oobFill: 'nan' });
  validateTensorMapTiled({
    dtype: 'float32',
    globalAddress: 0x1000n,
    globalDims: [512, 64, 3, 7, 2],
    globalStridesBytes: [2048, 2048 * 64, 2048 * 64 * 3, 2048 * 64 * 3 * 7],
    boxDims: [32, 8, 1, 1, 1],
    elementStrides: [1, 2, 1, 1, 8],
    swizzle: '128B',
  });
});

test('tensor map validation names the argument that breaks cuTensorMapEncodeTiled rules', () => {
  const cases: [Partial<TensorMapTiledOptions>, new (...args: never[]) => Error, string][] = [
    [{ globalAddress: 0x7f00_0000_0008n }, StrideError, 'globalAddress'],
    [{ globalDims: [], globalStridesBytes: [], boxDims: [] }, ShapeError, 'globalDims'],
    [{ globalDims: [576, 0] }, LimitError, 'globalDims[1]'],
    [{ globalDims: [576, 2 ** 32 + 1] }, LimitError, 'globalDims[1]'],
    [{ globalStridesBytes: [1000] }, StrideError, 'globalStridesBytes[0]'],
    [{ globalStridesBytes: [2 ** 40] }, LimitError, 'globalStridesBytes[0]'],
    [{ globalStridesBytes: [] }, ShapeError, 'globalStridesBytes'],
    [{ boxDims: [64] }, ShapeError, 'boxDims'],
    [{ boxDims: [64, 257] }, LimitError, 'boxDims[1]'],
    [{ boxDims: [4, 64] }, ShapeError, 'boxDims[0]'],
    [{ boxDims: [128, 64] }, ShapeError, 'boxDims[0]'],
    [{ boxDims: [64, 64], swizzle: '64B' }, ShapeError, 'boxDims[0]'],
    [{ elementStrides: [1, 9] }, LimitError, 'elementStrides[1]'],
    [{ elementStrides: [1] }, ShapeError, 'elementStrides'],
    [{ swizzle: '256B' as never }, OptionError, 'swizzle'],
    [{ dtype: 'int32' as never }, OptionError, 'dtype'],
    [{ interleave: '16B' }, ShapeError, 'globalDims'],
  ];
  for (const [change, kind, argument] of cases) {
    const error = mapError(change);
    assert.ok(error instanceof kind, `${argument}: expected ${kind.name}, got ${String(error)}`);
    assert.equal((error as { argument?: string }).argument, argument, String(error));
  }
});

test('tensor map validation allows the full 128-byte swizzle row and no more', () => {
  validateTensorMapTiled({ ...goodMap, boxDims: [64, 64], swizzle: '128B' });
  validateTensorMapTiled({ ...goodMap, boxDims: [16, 64], swizzle: '32B' });
  const error = mapError({ boxDims: [32, 64], swizzle: '32B' });
  assert.ok(error instanceof ShapeError);
  assert.match(error.message, /at most 32 bytes with swizzle 32B/);
});
